#!/usr/bin/env bash
# Full-covariance UBM (Kaldi's sid/train_full_ubm.sh): the diagonal UBM's
# Gaussians with full covariances, re-estimated by EM in parallel jobs with
# the Gaussian selection of the diagonal UBM (computed once). No Gaussian is
# removed, so the diagonal UBM's indices stay valid.
# Writes <out-dir>/final.ubm, objf, config, and copies final.dubm, cmvn_opts
# and delta_order from <diag-ubm-dir>; logs in <out-dir>/log/. Reruns skip,
# resume or restart as steps/ivector/train_diag_ubm.sh does (the EM driver:
# steps/ivector/em_lib.sh).
# Kaldi text copies of the models (final.dubm, final.ubm, final.ie) go in
# <out-dir>/kaldi/ (mtlasr.bin.export_kaldi).
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
. steps/ivector/em_lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 srcdir=$2 dir=$3

em_data "$data"
require_files "$srcdir/final.dubm" "$srcdir/cmvn_opts" "$srcdir/delta_order"
config="data=$data diag_ubm=$srcdir nj=$nj num_iters=$num_iters num_gselect=$num_gselect"

# Hooks of the EM driver: models $dir/N.ubm, accumulators $dir/N.JOB.acc.
em_restart() { em_copy "$srcdir" final.dubm cmvn_opts delta_order; }
em_init() {
  em_run convert "conversion to full covariances" \
    python3 -m mtlasr.bin.ubm_convert "$dir/final.dubm" "$dir/0.ubm"
}
em_prepare() {  # Gaussian selection once, with the diagonal UBM
  em_missing gselect || return 0
  em_jobs gselect "Gaussian selection" \
    python3 -m mtlasr.bin.ubm_select --num-gselect "$num_gselect" "$dir/final.dubm" "$sdata/JOB" "$dir/gselect.JOB.npz"
}
em_acc() { em_cmd=(python3 -m mtlasr.bin.ubm_acc --gselect "$dir/gselect.JOB.npz" "$dir/$1.ubm" "$sdata/JOB" "$2"); }
em_est() { em_cmd=(python3 -m mtlasr.bin.ubm_est); }

em_begin "$dir" ubm '%s.JOB.acc' "$num_iters" "full UBM" "options, features or UBM" "$config" \
  "$data/feats.scp" "$srcdir/final.dubm"
em_train "$data" update update false
