#!/usr/bin/env bash
# Extract i-vectors with a trained extractor (Kaldi's sid/extract_ivectors.sh,
# and with --online true the per-period matrices of
# steps/online/nnet2/extract_ivectors_online.sh, computed here from the
# cumulative statistics of each utterance's frames so far). Features and UBM
# posteriors are prepared exactly as in training: cmvn_opts, delta_order and
# posterior.conf are read from <extractor-dir>.
# Writes in <out-dir>:
#   ivectors.scp/.ark        one (D,) float32 i-vector per utterance
#   spk_ivectors.scp/.ark    per speaker, the mean of its utterance i-vectors
#                            (a speaker with one utterance gets that
#                            utterance's i-vector unchanged)
#   num_utts.ark             "<spk> <number of utterances averaged>"
#   ivector_online.scp/.ark  with --online true: (ceil(T/period), D) per
#                            utterance, row k from frames 0..k*period
#   ivector_period           with --online true: the period in frames
#   skipped_utts             "<utt> <reason>" for utterances without an
#                            i-vector (no frames); the stage does not fail
# Non-finite features are an error naming the utterance (see log/extract.*.log).
# --backend torch computes posteriors, statistics and i-vectors with PyTorch
# on --device (auto: a GPU if there is one); on CPU they equal numpy's to
# about 1e-15 (mtlasr.ivector.torch_backend). Unset, the programs' default
# (numpy) runs and the record is as before.
set -euo pipefail

nj=4
cmd=utils/run_local.sh
num_threads=1                 # BLAS (and torch) threads per job (jobs run in parallel)
backend=                      # numpy|torch (default: the program's, numpy)
device=                       # with --backend torch: auto|cpu|cuda (default: the program's, auto)
online=false
ivector_period=10
force=false
help_message="Usage: $0 [options] <data-dir> <extractor-dir> <out-dir>
e.g.: $0 --nj 4 --online true data/dev exp/ivector/extractor exp/ivectors_dev"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. steps/ivector/em_lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 srcdir=$2 dir=$3

em_data "$data"
require_files "$srcdir/final.ie" "$srcdir/final.ubm" "$srcdir/final.dubm" "$srcdir/cmvn_opts" \
  "$srcdir/delta_order" "$srcdir/posterior.conf"
record=$(step_record "nj=$nj online=$online ivector_period=$ivector_period${backend:+ backend=$backend}${device:+ device=$device}" "$data/feats.scp" "$data/cmvn.scp" \
  "$data/spk2utt" "$srcdir/final.ie" "$srcdir/final.ubm" "$srcdir/final.dubm" "$srcdir/cmvn_opts" \
  "$srcdir/delta_order" "$srcdir/posterior.conf")
if [ "$force" = false ] && [ -s "$dir/ivectors.scp" ] && step_fresh "$dir" extract "$record"; then
  log "$dir: i-vectors are up to date; skipping (--force true to redo)"
  exit 0
fi
# Extracted into $dir.next, which replaces $dir when complete.
final=$dir dir=$dir.next
rm -rf "$dir"
mkdir -p "$dir/log"
utils/split_data.sh "$data" "$nj"
sdata=$data/split$nj
start=$(date +%s)
$cmd --num-threads "$num_threads" JOB=1:"$nj" "$dir/log/extract.JOB.log" \
  python3 -m mtlasr.bin.extract_ivectors --online "$online" --ivector-period "$ivector_period" \
    --num-threads "$num_threads" ${backend:+--backend "$backend"} ${device:+--device "$device"} \
    "$srcdir" "$sdata/JOB" "$dir" JOB \
  || die_log "$dir/log/extract.*.log" "i-vector extraction failed"

for n in $(seq "$nj"); do cat "$dir/skipped.$n"; done | sort > "$dir/skipped_utts.tmp"
mv -f "$dir/skipped_utts.tmp" "$dir/skipped_utts"   # may be empty
for n in $(seq "$nj"); do cat "$dir/ivectors.$n.scp"; done | sort > "$dir/ivectors.scp.tmp"
[ -s "$dir/ivectors.scp.tmp" ] || die "no utterance of $data got an i-vector (see $dir/skipped_utts)"
atomic_mv "$dir/ivectors.scp.tmp" "$dir/ivectors.scp"
if [ "$online" = true ]; then
  for n in $(seq "$nj"); do cat "$dir/ivector_online.$n.scp"; done | sort > "$dir/ivector_online.scp.tmp"
  atomic_mv "$dir/ivector_online.scp.tmp" "$dir/ivector_online.scp"
  echo "$ivector_period" > "$dir/ivector_period"
fi
rm -f "$dir"/skipped.[0-9]* "$dir"/ivectors.[0-9]*.scp "$dir"/ivector_online.[0-9]*.scp

$cmd "$dir/log/spk_mean.log" \
  python3 -m mtlasr.bin.ivector_mean "$data/spk2utt" "$dir/ivectors.scp" "$dir/spk_ivectors.ark" \
    "$dir/spk_ivectors.scp" "$dir/num_utts.ark" \
  || die_log "$dir/log/spk_mean.log" "speaker averaging failed"

nskip=$(wc -l < "$dir/skipped_utts")
[ "$nskip" -gt 0 ] && log "WARNING: $nskip utterances of $data skipped (listed in $dir/skipped_utts)"
# The scps point into the arks by absolute path: make them point to where the arks will be.
abs_next=$(cd "$dir" && pwd)
abs_final=$(dirname "$abs_next")/$(basename "$final")
for f in "$dir"/*.scp; do
  sed "s|$abs_next/|$abs_final/|" "$f" > "$f.tmp"
  atomic_mv "$f.tmp" "$f"
done
step_done "$dir" extract "$record"
replace_dir "$dir" "$final"
dir=$final
log "$dir: $(wc -l < "$dir/ivectors.scp") utterance and $(wc -l < "$dir/spk_ivectors.scp") speaker i-vectors" \
  "in $(( $(date +%s) - start )) s; job 1: $(grep -h 'frames/s' "$dir/log/extract.1.log" | sed 's/.*INFO //')"
