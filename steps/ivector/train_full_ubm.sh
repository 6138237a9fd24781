#!/usr/bin/env bash
# Full-covariance UBM (Kaldi's sid/train_full_ubm.sh): the diagonal UBM's
# Gaussians with full covariances, re-estimated by EM in parallel jobs with
# the Gaussian selection of the diagonal UBM (computed once). No Gaussian is
# removed, so the diagonal UBM's indices stay valid.
# Writes <out-dir>/final.ubm, objf, config, and copies final.dubm, cmvn_opts
# and delta_order from <diag-ubm-dir>; logs in <out-dir>/log/. Reruns skip,
# resume or restart as steps/ivector/train_diag_ubm.sh does.
set -euo pipefail

nj=4
cmd=utils/run_local.sh
num_threads=1                 # BLAS threads per job (jobs run in parallel)
num_iters=4
num_gselect=20
force=false
help_message="Usage: $0 [options] <data-dir> <diag-ubm-dir> <out-dir>
e.g.: $0 --nj 4 data/train exp/ivector/diag_ubm exp/ivector/full_ubm"
cmdline="$0 $*"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 srcdir=$2 dir=$3
export OMP_NUM_THREADS=$num_threads OPENBLAS_NUM_THREADS=$num_threads MKL_NUM_THREADS=$num_threads

require_files "$data/feats.scp" "$data/cmvn.scp" "$data/utt2spk" "$data/spk2utt" \
  "$srcdir/final.dubm" "$srcdir/cmvn_opts" "$srcdir/delta_order"
nspk=$(wc -l < "$data/spk2utt")
[ "$nj" -gt "$nspk" ] && nj=$nspk
config="data=$data diag_ubm=$srcdir nj=$nj num_iters=$num_iters num_gselect=$num_gselect"
inputs=("$data/feats.scp" "$srcdir/final.dubm")  # a newer input means starting again
if [ "$force" = false ] && done_marker_ok "$dir" train && [ -f "$dir/final.ubm" ] &&
   config_fresh "$dir" "$config" "${inputs[@]}"; then
  log "$dir: full UBM already trained; skipping (--force true to redo)"
  exit 0
fi
if [ "$force" = true ] || ! config_fresh "$dir" "$config" "${inputs[@]}"; then
  [ "$force" = false ] && [ -f "$dir/config" ] && log "$dir: options, features or UBM changed since the last run; starting again"
  rm -f "$dir"/[0-9]*.ubm "$dir"/[0-9]*.acc "$dir"/gselect.[0-9]*.npz "$dir/final.ubm" "$dir/objf" "$dir/.train.done"
  mkdir -p "$dir/log"
  for f in final.dubm cmvn_opts delta_order; do
    cp -L "$srcdir/$f" "$dir/$f.tmp"
    atomic_mv "$dir/$f.tmp" "$dir/$f"
  done
  write_config "$dir" "$config"
else
  log "$dir: resuming"
fi
rm -f "$dir/.train.done"
printf '%s\n' "$cmdline" > "$dir/log/cmdline"
start=$(date +%s)

if [ ! -f "$dir/0.ubm" ]; then
  $cmd "$dir/log/convert.log" python3 -m mtlasr.bin.ubm_convert "$dir/final.dubm" "$dir/0.ubm" \
    || die "conversion to full covariances failed; see $dir/log/convert.log"
fi
utils/split_data.sh "$data" "$nj"
sdata=$data/split$nj
missing=false
for n in $(seq "$nj"); do [ -f "$dir/gselect.$n.npz" ] || missing=true; done
if [ "$missing" = true ]; then
  $cmd --num-threads "$num_threads" JOB=1:"$nj" "$dir/log/gselect.JOB.log" \
    python3 -m mtlasr.bin.ubm_select --num-gselect "$num_gselect" "$dir/final.dubm" "$sdata/JOB" "$dir/gselect.JOB.npz" \
    || die "Gaussian selection failed; see $dir/log/gselect.*.log"
fi

for ((x = 0; x < num_iters; x++)); do
  next=$((x + 1))
  [ -f "$dir/$next.ubm" ] && continue
  $cmd --num-threads "$num_threads" JOB=1:"$nj" "$dir/log/acc.$x.JOB.log" \
    python3 -m mtlasr.bin.ubm_acc --gselect "$dir/gselect.JOB.npz" "$dir/$x.ubm" "$sdata/JOB" "$dir/$x.JOB.acc" \
    || die "accumulation failed; see $dir/log/acc.$x.*.log"
  accs=()
  for n in $(seq "$nj"); do accs+=("$dir/$x.$n.acc"); done
  $cmd "$dir/log/update.$x.log" \
    python3 -m mtlasr.bin.ubm_est --iteration "$x" --objf-file "$dir/objf" "$dir/$x.ubm" "$dir/$next.ubm" "${accs[@]}" \
    || die "update failed; see $dir/log/update.$x.log"
  rm -f "${accs[@]}"
  log "$(grep -h 'iteration .*: log-likelihood per frame' "$dir/log/update.$x.log" | sed 's/.*INFO //');" \
    "job 1: $(grep -h 'frames/s' "$dir/log/acc.$x.1.log" | sed 's/.*INFO //')"
done

ln -sfn "$num_iters.ubm" "$dir/final.ubm"
mark_done "$dir" train
log "$dir: full UBM trained in $(( $(date +%s) - start )) s"
