#!/usr/bin/env bash
# Score a decode dir (WER, PER or CER) on any corpus, as Kaldi's score_kaldi.sh.
# Decoding left best-path hypotheses (Kaldi text) in
# <decode-dir>/scoring/<lmwt>_<wip>/hyp.<job>.tra, one dir per LM weight and
# word insertion penalty tried (the dir name splits at its last '_').
# For each such dir: hyp.txt (the sorted hyp.*.tra), <metric>, <metric>_spk,
# <metric>_utt and score.log. Then picks the pair with the lowest error rate on
# this set (ties: the smaller LM weight, then the smaller penalty), or the pair
# chosen on another set (--lmwt-from <dev-decode-dir>), and writes
# <decode-dir>/{<metric>,<metric>_spk,<metric>_utt,lmwt,wip}.
# <decode-dir>/.score_<metric>.record says what the scores were made from
# (the decode, the references, the options); a rerun skips while it matches.
set -euo pipefail

metric=wer           # wer, per or cer (names the result files)
token_map=           # map file, lines 'src dst' or 'src' (deleted); default: none
ignore=              # space-separated tokens removed before alignment
lmwt_from=           # decode dir whose lmwt and wip files to use instead of choosing here
cmd=utils/run_local.sh
help_message="Usage: $0 [options] <data-dir> <decode-dir>
e.g.: $0 data/dev exp/tri/decode_dev
      $0 --lmwt-from exp/tri/decode_dev data/test exp/tri/decode_test
      $0 --metric per --token-map conf/phones.48-39.map data/test exp/mono/decode_test"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 dir=$2

case "$metric" in wer|per|cer) ;; *) die "--metric must be wer, per or cer, got '$metric'" ;; esac
require_files "$data/text" "$data/utt2spk" "$dir/.decode.record"
opts=(--metric "$metric" --utt2spk "$data/utt2spk")
inputs=("$data/text" "$data/utt2spk" "$dir/.decode.record")
if [ -n "$token_map" ]; then
  require_files "$token_map"
  opts+=(--token-map "$token_map")
  inputs+=("$token_map")
fi
[ -n "$ignore" ] && opts+=(--ignore "$ignore")
[ -z "$lmwt_from" ] || inputs+=("$lmwt_from/lmwt" "$lmwt_from/wip")
record=$(step_record "metric=$metric ignore=$ignore lmwt_from=$lmwt_from" "${inputs[@]}")
if step_fresh "$dir" "score_$metric" "$record" && [ -f "$dir/$metric" ]; then
  log "$(cat "$dir/$metric") (up to date; LM weight $(cat "$dir/lmwt"), penalty $(cat "$dir/wip"))"
  exit 0
fi

[ -d "$dir/scoring" ] || die "$dir/scoring: no such directory (not decoded?)"
pairs=$(find "$dir/scoring" -mindepth 2 -maxdepth 2 -name 'hyp.*.tra' | awk -F/ '{print $(NF-1)}' | sort -u)
[ -n "$pairs" ] || die "$dir/scoring: no hypotheses (scoring/<lmwt>_<wip>/hyp.*.tra)"
for d in $pairs; do
  [[ $d =~ ^.+_[^_]+$ ]] || die "$dir/scoring/$d: expected a directory named <lmwt>_<wip>"
done

nscored=0
for d in $pairs; do
  sdir=$dir/scoring/$d
  cat "$sdir"/hyp.*.tra | sort > "$sdir/hyp.txt.tmp"
  mv -f "$sdir/hyp.txt.tmp" "$sdir/hyp.txt"
  $cmd "$sdir/score.log" python3 -m mtlasr.bin.compute_error_rate "${opts[@]}" \
    "$data/text" "$sdir/hyp.txt" "$sdir" || die_log "$sdir/score.log" "scoring failed"
  nscored=$((nscored + 1))
done

if [ -n "$lmwt_from" ]; then
  require_files "$lmwt_from/lmwt" "$lmwt_from/wip"
  lmwt=$(cat "$lmwt_from/lmwt") wip=$(cat "$lmwt_from/wip")
  [ -f "$dir/scoring/${lmwt}_${wip}/$metric" ] ||
    die "$dir was not decoded at LM weight $lmwt, penalty $wip (chosen on $lmwt_from; see $dir/scoring)"
else
  # Lowest error rate; ties: the smaller LM weight, then the smaller penalty.
  best=$(for d in $pairs; do
           rate=$(awk '{print $2; exit}' "$dir/scoring/$d/$metric")
           [[ $rate =~ ^[0-9.]+$ ]] || die_log "$dir/scoring/$d/score.log" "$dir/scoring/$d/$metric: no error rate (empty reference?)"
           echo "$rate ${d%_*} ${d##*_}"
         done | sort -k1,1g -k2,2g -k3,3g | awk 'NR == 1 {print $2, $3}')
  lmwt=${best% *} wip=${best#* }
fi

best_dir=$dir/scoring/${lmwt}_${wip}
for f in "$metric" "${metric}_spk" "${metric}_utt"; do
  cp "$best_dir/$f" "$dir/$f.tmp"
  atomic_mv "$dir/$f.tmp" "$dir/$f"
done
echo "$lmwt" > "$dir/lmwt.tmp"
atomic_mv "$dir/lmwt.tmp" "$dir/lmwt"
echo "$wip" > "$dir/wip.tmp"
atomic_mv "$dir/wip.tmp" "$dir/wip"
step_done "$dir" "score_$metric" "$record"
log "$(cat "$dir/$metric") (LM weight $lmwt, penalty $wip${lmwt_from:+, chosen on $lmwt_from}; $nscored pairs scored)"
