#!/usr/bin/env bash
# CTC log-probabilities of a data dir from an end-to-end model (its
# final.pt, config.yaml, units.txt): <dir>/logprobs.scp (per utterance a
# (T', V) matrix, T' = frames after subsampling, column 0 = blank), a copy
# of units.txt and <dir>/subsampling (input frames per output frame), as
# steps/decode_ctc.sh reads them. Forward passes run in --nj jobs (logs in
# <dir>/log/forward.JOB.log, with the real-time factor).
# <dir>/.forward.record says what the outputs were made from; a rerun skips
# while it matches, and a redo is built in <dir>.next and replaces <dir>
# only when complete.
set -euo pipefail

nj=4
cmd=utils/run_local.sh
device=cpu
force=false
help_message="Usage: $0 [options] <nnet-dir> <data-dir> <dir>
e.g.: $0 --nj 2 exp/ctc data/dev exp/ctc/decode_dev"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
nnet=$1 data=$2 dir=$3

require_files "$nnet/final.pt" "$nnet/units.txt" "$data/feats.scp" "$data/cmvn.scp"
nspk=$(wc -l < "$data/spk2utt")
[ "$nj" -gt "$nspk" ] && nj=$nspk
record=$(step_record "device=$device" "$nnet/final.pt" "$nnet/units.txt" "$data/feats.scp" "$data/cmvn.scp")
if [ "$force" = false ] && [ -f "$dir/logprobs.scp" ] && step_fresh "$dir" forward "$record"; then
  log "$dir: CTC outputs already computed from these inputs; skipping"
  exit 0
fi
next=$dir.next
rm -rf "$next"
mkdir -p "$next/log"
utils/split_data.sh "$data" "$nj"
log "CTC forward pass of $data with $nnet ($nj jobs)"
$cmd JOB=1:"$nj" "$next/log/forward.JOB.log" \
  python3 -m mtlasr.bin.nnet_forward --device "$device" --scp "$next/logprobs.JOB.scp" \
    "$nnet" "$data/split$nj/JOB" "$next/logprobs.JOB.ark" \
  || die_log "$next/log/forward.1.log" "CTC forward pass failed"
# the scps name the arks in $next; once moved they must name $dir
for j in $(seq "$nj"); do
  sed "s|$next/logprobs\.$j\.ark|$dir/logprobs.$j.ark|" "$next/logprobs.$j.scp"
done > "$next/logprobs.scp"
rm -f "$next"/logprobs.*[0-9].scp
cp "$nnet/units.txt" "$next/units.txt"
# input frames per output frame (steps/decode_ctc.sh's real-time factor)
python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['model']['subsampling'])" \
  "$nnet/config.yaml" > "$next/subsampling"
[ ! -f "$nnet/unit_type" ] || cp "$nnet/unit_type" "$next/unit_type"
replace_dir "$next" "$dir"
step_done "$dir" forward "$record"
