#!/usr/bin/env bash
# I-vector extractor (Kaldi's sid/train_ivector_extractor.sh, without weight
# projections): frame posteriors of the full UBM (Gaussian selection with its
# diagonal version, pruning at --min-post, scaled by --posterior-scale) are
# computed once; each EM iteration accumulates statistics in parallel jobs and
# re-estimates projections, covariances and prior (mtlasr.ivector).
# Writes <out-dir>/final.ie (npz), objf ("<iteration> <log-likelihood per
# frame>", w integrated out), posterior.conf, and copies final.ubm, cmvn_opts
# and delta_order from <ubm-dir> (final.dubm is derived from final.ubm);
# logs in <out-dir>/log/ (est.N.log: the objective of iteration N).
# A rerun continues from the last finished iteration (N.ie), also when
# --num-iters is raised; changed options, features or UBM start again, as
# does --force true (the EM driver: steps/ivector/em_lib.sh). --cleanup true
# keeps only the latest N.ie.
# Kaldi text copies of the models (final.dubm, final.ubm, final.ie) go in
# <out-dir>/kaldi/ (mtlasr.bin.export_kaldi).
# --backend torch computes the UBM posteriors, statistics and E-step with
# PyTorch on --device (auto: a GPU if there is one; mtlasr.ivector.torch_backend
# says what equals numpy's bit for bit); the M-step stays numpy. Unset, the
# programs' default (numpy) runs and the record is as before.
set -euo pipefail

nj=4
cmd=utils/run_local.sh
num_threads=1                 # BLAS (and torch) threads per job (jobs run in parallel)
backend=                      # numpy|torch (default: the programs', numpy)
device=                       # with --backend torch: auto|cpu|cuda (default: the programs', auto)
ivector_dim=100
num_iters=10
num_gselect=20
min_post=0.025
posterior_scale=1.0
prior_offset=100.0
variance_floor_factor=0.1
seed=0
cleanup=true
force=false
help_message="Usage: $0 [options] <data-dir> <ubm-dir> <out-dir>
e.g.: $0 --nj 4 --ivector-dim 100 data/train exp/ivector/full_ubm exp/ivector/extractor"
cmdline="$0 $*"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. steps/ivector/em_lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 srcdir=$2 dir=$3

em_data "$data"
require_files "$srcdir/final.ubm" "$srcdir/cmvn_opts" "$srcdir/delta_order"
config="data=$data ubm=$srcdir nj=$nj ivector_dim=$ivector_dim num_gselect=$num_gselect min_post=$min_post"
config+=" posterior_scale=$posterior_scale prior_offset=$prior_offset variance_floor_factor=$variance_floor_factor seed=$seed"
config+="${backend:+ backend=$backend}${device:+ device=$device}"
backend_opts=(--num-threads "$num_threads" ${backend:+--backend "$backend"} ${device:+--device "$device"})

# Hooks of the EM driver: models $dir/N.ie, accumulators $dir/acc.N.JOB.
em_restart() {
  rm -f "$dir/final.dubm"
  em_copy "$srcdir" final.ubm cmvn_opts delta_order
  printf -- '--num-gselect=%s\n--min-post=%s\n--posterior-scale=%s\n' \
    "$num_gselect" "$min_post" "$posterior_scale" > "$dir/posterior.conf.tmp"
  atomic_mv "$dir/posterior.conf.tmp" "$dir/posterior.conf"
}
em_init() {
  em_run init "extractor initialisation" \
    python3 -m mtlasr.bin.ivector_init --ivector-dim "$ivector_dim" --prior-offset "$prior_offset" \
      --seed "$seed" "$dir/final.ubm" "$dir/0.ie"
}
em_prepare() {  # frame posteriors of the full UBM once, the diagonal UBM selecting
  if [ ! -f "$dir/final.dubm" ]; then
    em_run convert "conversion to a diagonal UBM" \
      python3 -m mtlasr.bin.ubm_convert "$dir/final.ubm" "$dir/final.dubm"
  fi
  em_missing post || return 0
  em_jobs post "UBM posteriors" \
    python3 -m mtlasr.bin.ubm_select "${backend_opts[@]}" --num-gselect "$num_gselect" --full-ubm "$dir/final.ubm" \
      --min-post "$min_post" --posterior-scale "$posterior_scale" "$dir/final.dubm" "$sdata/JOB" "$dir/post.JOB.npz"
}
em_acc() { em_cmd=(python3 -m mtlasr.bin.ivector_acc "${backend_opts[@]}" "$dir/$1.ie" "$sdata/JOB" "$dir/post.JOB.npz" "$2"); }
em_est() { em_cmd=(python3 -m mtlasr.bin.ivector_est --variance-floor-factor "$variance_floor_factor"); }

em_begin "$dir" ie 'acc.%s.JOB' "$num_iters" "i-vector extractor" "options, features or UBM" "$config" \
  "$data/feats.scp" "$srcdir/final.ubm"
em_train "$data" est estimation "$cleanup"
