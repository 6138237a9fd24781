#!/usr/bin/env bash
# Speaker-verification check of i-vectors: cosine scoring of every pair of
# utterances of the given sets, equal error rate (mtlasr.bin.ivector_eer).
# Writes <out-dir>/eer (one line), scores and scores.png; log in
# <out-dir>/log/eer.log. <out-dir>/.eer.record says what they were made from
# (the sets' utt2spk, the i-vectors, --center's i-vectors, the code); a rerun
# skips while it matches.
set -euo pipefail

center=          # i-vector dir whose mean is subtracted first (the training set's); default: the sets' mean
help_message="Usage: $0 [options] <out-dir> <data-dir> <ivector-dir> [<data-dir> <ivector-dir> ...]
e.g.: $0 --center exp/ivectors_train exp/ivectors_eer data/dev exp/ivectors_dev data/test exp/ivectors_test"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -lt 3 ] || [ $(($# % 2)) -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
dir=$1
shift
inputs=()
for ((i = 1; i <= $#; i += 2)); do
  j=$((i + 1))
  require_files "${!i}/utt2spk" "${!j}/ivectors.scp"
  inputs+=("${!i}/utt2spk" "${!j}/ivectors.scp" "${!j}/.extract.record")
done
[ -z "$center" ] || { require_files "$center/ivectors.scp"; inputs+=("$center/ivectors.scp" "$center/.extract.record"); }
record=$(step_record "center=$center sets=$*" "${inputs[@]}")
if [ -f "$dir/eer" ] && step_fresh "$dir" eer "$record"; then
  log "$dir: $(cat "$dir/eer") (up to date)"
  exit 0
fi
mkdir -p "$dir/log"
python3 -m mtlasr.bin.ivector_eer ${center:+--center "$center"} "$dir" "$@" > "$dir/log/eer.log" 2>&1 \
  || die_log "$dir/log/eer.log" "the EER check failed"
step_done "$dir" eer "$record"
log "$dir: $(cat "$dir/eer")"
