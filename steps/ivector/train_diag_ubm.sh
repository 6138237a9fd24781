#!/usr/bin/env bash
# Diagonal-covariance UBM for i-vectors (Kaldi's sid/train_diag_ubm.sh):
# initialisation on a random subset of frames (EM with Gaussian splitting),
# Gaussian selection once, then EM restricted to the selected Gaussians in
# parallel jobs; Gaussians lighter than --min-gaussian-weight are removed on
# the last iteration. Features: CMVN per --cmvn-mode + deltas, recorded in
# <out-dir>/cmvn_opts and delta_order for the later steps.
# Writes <out-dir>/final.dubm, objf ("<iteration> <log-likelihood per frame>"),
# config; logs in <out-dir>/log/. A rerun skips a finished dir and resumes an
# unfinished one at its last finished iteration; changed options or features
# start it again, as does --force true (the EM driver: steps/ivector/em_lib.sh).
# Kaldi text copies of the models (final.dubm, final.ubm, final.ie) go in
# <out-dir>/kaldi/ (mtlasr.bin.export_kaldi).
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
. steps/ivector/em_lib.sh
. utils/parse_options.sh
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 dir=$2

em_data "$data"
config="data=$data nj=$nj num_gauss=$num_gauss num_gauss_init=$num_gauss_init num_iters_init=$num_iters_init"
config+=" num_iters=$num_iters num_gselect=$num_gselect num_frames=$num_frames delta_order=$delta_order"
config+=" norm_vars=$norm_vars cmvn_mode=$cmvn_mode min_gaussian_weight=$min_gaussian_weight seed=$seed"

# Hooks of the EM driver: models $dir/N.dubm, accumulators $dir/N.JOB.acc.
em_init() {
  log "initialising $num_gauss Gaussians on up to $num_frames frames of $data (log: $dir/log/init.log)"
  em_run init "UBM initialisation" \
    python3 -m mtlasr.bin.ubm_init --num-gauss "$num_gauss" --num-gauss-init "$num_gauss_init" \
      --num-iters "$num_iters_init" --num-frames "$num_frames" --norm-vars "$norm_vars" \
      --cmvn-mode "$cmvn_mode" --delta-order "$delta_order" --seed "$seed" "$data" "$dir/0.dubm"
}
em_prepare() {  # Gaussian selection once, with the initial UBM
  em_missing gselect || return 0
  em_jobs gselect "Gaussian selection" \
    python3 -m mtlasr.bin.ubm_select --num-gselect "$num_gselect" "$dir/0.dubm" "$sdata/JOB" "$dir/gselect.JOB.npz"
}
em_acc() { em_cmd=(python3 -m mtlasr.bin.ubm_acc --gselect "$dir/gselect.JOB.npz" "$dir/$1.dubm" "$sdata/JOB" "$2"); }
em_est() {  # Gaussians lighter than --min-gaussian-weight go on the last iteration only
  local min_weight=0
  [ "$(($1 + 1))" -eq "$num_iters" ] && min_weight=$min_gaussian_weight
  em_cmd=(python3 -m mtlasr.bin.ubm_est --min-gaussian-weight "$min_weight")
}

em_begin "$dir" dubm '%s.JOB.acc' "$num_iters" "diagonal UBM" "options or features" "$config" "$data/feats.scp"
em_train "$data" update update false
