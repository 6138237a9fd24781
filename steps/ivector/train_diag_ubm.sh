#!/usr/bin/env bash
# Diagonal-covariance UBM for i-vectors (Kaldi's sid/train_diag_ubm.sh):
# initialisation on a random subset of frames (EM with Gaussian splitting),
# Gaussian selection once, then EM restricted to the selected Gaussians in
# parallel jobs; Gaussians lighter than --min-gaussian-weight are removed on
# the last iteration. Features: speaker CMVN + deltas, recorded in
# <out-dir>/cmvn_opts and delta_order for the later steps.
# Writes <out-dir>/final.dubm, objf ("<iteration> <log-likelihood per frame>"),
# config; logs in <out-dir>/log/. A rerun skips a finished dir and resumes an
# unfinished one at its last finished iteration; changed options or features
# start it again, as does --force true.
set -euo pipefail

nj=4
cmd=utils/run_local.sh
num_threads=1                 # BLAS threads per job (jobs run in parallel)
num_gauss=256
num_gauss_init=0              # Gaussians to start from; 0: num_gauss / 2
num_iters_init=20             # EM iterations of the initialisation
num_iters=4                   # EM iterations after Gaussian selection
num_gselect=30                # Gaussians selected per frame
num_frames=500000             # random subset of frames for the initialisation
delta_order=2
norm_vars=true
cmvn_mode=speaker             # speaker (data dir's cmvn.scp), utterance (own stats) or none
min_gaussian_weight=1e-4      # applied on the last iteration only
seed=0
force=false
help_message="Usage: $0 [options] <data-dir> <out-dir>
e.g.: $0 --nj 4 --num-gauss 256 data/train exp/ivector/diag_ubm"
cmdline="$0 $*"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 dir=$2
export OMP_NUM_THREADS=$num_threads OPENBLAS_NUM_THREADS=$num_threads MKL_NUM_THREADS=$num_threads

require_files "$data/feats.scp" "$data/cmvn.scp" "$data/utt2spk" "$data/spk2utt"
nspk=$(wc -l < "$data/spk2utt")
[ "$nj" -gt "$nspk" ] && nj=$nspk
config="data=$data nj=$nj num_gauss=$num_gauss num_gauss_init=$num_gauss_init num_iters_init=$num_iters_init"
config+=" num_iters=$num_iters num_gselect=$num_gselect num_frames=$num_frames delta_order=$delta_order"
config+=" norm_vars=$norm_vars cmvn_mode=$cmvn_mode min_gaussian_weight=$min_gaussian_weight seed=$seed"
inputs=("$data/feats.scp")  # a newer input means starting again
if [ "$force" = false ] && done_marker_ok "$dir" train && [ -f "$dir/final.dubm" ] &&
   config_fresh "$dir" "$config" "${inputs[@]}"; then
  log "$dir: diagonal UBM already trained; skipping (--force true to redo)"
  exit 0
fi
if [ "$force" = true ] || ! config_fresh "$dir" "$config" "${inputs[@]}"; then
  [ "$force" = false ] && [ -f "$dir/config" ] && log "$dir: options or features changed since the last run; starting again"
  rm -f "$dir"/[0-9]*.dubm "$dir"/[0-9]*.acc "$dir"/gselect.[0-9]*.npz "$dir/final.dubm" "$dir/objf" "$dir/.train.done"
  mkdir -p "$dir/log"
  write_config "$dir" "$config"
else
  log "$dir: resuming"
fi
rm -f "$dir/.train.done"
printf '%s\n' "$cmdline" > "$dir/log/cmdline"
start=$(date +%s)

if [ ! -f "$dir/0.dubm" ]; then
  log "initialising $num_gauss Gaussians on up to $num_frames frames of $data (log: $dir/log/init.log)"
  $cmd "$dir/log/init.log" \
    python3 -m mtlasr.bin.ubm_init --num-gauss "$num_gauss" --num-gauss-init "$num_gauss_init" \
      --num-iters "$num_iters_init" --num-frames "$num_frames" --norm-vars "$norm_vars" \
      --cmvn-mode "$cmvn_mode" --delta-order "$delta_order" --seed "$seed" "$data" "$dir/0.dubm" \
    || die "UBM initialisation failed; see $dir/log/init.log"
fi

utils/split_data.sh "$data" "$nj"
sdata=$data/split$nj
missing=false
for n in $(seq "$nj"); do [ -f "$dir/gselect.$n.npz" ] || missing=true; done
if [ "$missing" = true ]; then
  $cmd --num-threads "$num_threads" JOB=1:"$nj" "$dir/log/gselect.JOB.log" \
    python3 -m mtlasr.bin.ubm_select --num-gselect "$num_gselect" "$dir/0.dubm" "$sdata/JOB" "$dir/gselect.JOB.npz" \
    || die "Gaussian selection failed; see $dir/log/gselect.*.log"
fi

for ((x = 0; x < num_iters; x++)); do
  next=$((x + 1))
  [ -f "$dir/$next.dubm" ] && continue
  min_weight=0
  [ "$next" -eq "$num_iters" ] && min_weight=$min_gaussian_weight
  $cmd --num-threads "$num_threads" JOB=1:"$nj" "$dir/log/acc.$x.JOB.log" \
    python3 -m mtlasr.bin.ubm_acc --gselect "$dir/gselect.JOB.npz" "$dir/$x.dubm" "$sdata/JOB" "$dir/$x.JOB.acc" \
    || die "accumulation failed; see $dir/log/acc.$x.*.log"
  accs=()
  for n in $(seq "$nj"); do accs+=("$dir/$x.$n.acc"); done
  $cmd "$dir/log/update.$x.log" \
    python3 -m mtlasr.bin.ubm_est --min-gaussian-weight "$min_weight" --iteration "$x" --objf-file "$dir/objf" \
      "$dir/$x.dubm" "$dir/$next.dubm" "${accs[@]}" \
    || die "update failed; see $dir/log/update.$x.log"
  rm -f "${accs[@]}"
  log "$(grep -h 'iteration .*: log-likelihood per frame' "$dir/log/update.$x.log" | sed 's/.*INFO //');" \
    "job 1: $(grep -h 'frames/s' "$dir/log/acc.$x.1.log" | sed 's/.*INFO //')"
done

ln -sfn "$num_iters.dubm" "$dir/final.dubm"
mark_done "$dir" train
log "$dir: diagonal UBM trained in $(( $(date +%s) - start )) s"
