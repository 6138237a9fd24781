#!/usr/bin/env bash
# TIMIT phone error rate of a decode dir: hypotheses and references folded
# 48 -> 39 phones, sil scored as a token. Scores every LM weight decoded
# (scoring/<LMWT>/), picks the best one on this set, or takes the one
# chosen on another set (--lmwt-from <dev-decode-dir>), and writes
# <decode-dir>/{per,per_spk,per_utt,lmwt}.
set -euo pipefail

phone_map=conf/phones.60-48-39.map
lmwt_from=
help_message="Usage: $0 [options] <data-dir> <decode-dir>
e.g.: $0 data/dev exp/lstm/decode_dev
      $0 --lmwt-from exp/lstm/decode_dev data/test exp/lstm/decode_test"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 dir=$2

require_files "$data/text" "$data/utt2spk" "$phone_map" "$dir/.decode.done"
lmwts=$(find "$dir/scoring" -mindepth 2 -maxdepth 2 -name 'hyp.*.tra' | awk -F/ '{print $(NF-1)}' | sort -gu)
[ -n "$lmwts" ] || die "$dir/scoring: no hypotheses"
for w in $lmwts; do
  cat "$dir"/scoring/"$w"/hyp.*.tra | sort > "$dir/scoring/$w/hyp.txt"
  python3 -m mtlasr.bin.compute_per --phone-map "$phone_map" --utt2spk "$data/utt2spk" \
    "$data/text" "$dir/scoring/$w/hyp.txt" "$dir/scoring/$w" > /dev/null 2> "$dir/scoring/$w/score.log" \
    || die "scoring failed; see $dir/scoring/$w/score.log"
done
if [ -n "$lmwt_from" ]; then
  require_files "$lmwt_from/lmwt"
  best=$(cat "$lmwt_from/lmwt")
  [ -f "$dir/scoring/$best/per" ] || die "$dir was not decoded at LM weight $best (chosen in $lmwt_from)"
else
  # The LM weight with the lowest PER on this set (ties: the smaller weight).
  best=$(for w in $lmwts; do echo "$w $(awk '{print $2}' "$dir/scoring/$w/per")"; done |
         sort -k2,2g -k1,1g | head -n 1 | cut -d' ' -f1)
fi
for f in per per_spk per_utt; do cp "$dir/scoring/$best/$f" "$dir/$f"; done
echo "$best" > "$dir/lmwt"
log "$(cat "$dir/per") (LM weight $best${lmwt_from:+, chosen on $lmwt_from})"
