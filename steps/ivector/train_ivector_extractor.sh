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
# does --force true. --cleanup true keeps only the latest N.ie.
set -euo pipefail

nj=4
cmd=utils/run_local.sh
num_threads=1                 # BLAS threads per job (jobs run in parallel)
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
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 srcdir=$2 dir=$3
export OMP_NUM_THREADS=$num_threads OPENBLAS_NUM_THREADS=$num_threads MKL_NUM_THREADS=$num_threads

require_files "$data/feats.scp" "$data/cmvn.scp" "$data/utt2spk" "$data/spk2utt" \
  "$srcdir/final.ubm" "$srcdir/cmvn_opts" "$srcdir/delta_order"
nspk=$(wc -l < "$data/spk2utt")
[ "$nj" -gt "$nspk" ] && nj=$nspk
config="data=$data ubm=$srcdir nj=$nj ivector_dim=$ivector_dim num_gselect=$num_gselect min_post=$min_post"
config+=" posterior_scale=$posterior_scale prior_offset=$prior_offset variance_floor_factor=$variance_floor_factor seed=$seed"
inputs=("$data/feats.scp" "$srcdir/final.ubm")  # a newer input means starting again
if [ "$force" = false ] && done_marker_ok "$dir" train && [ -f "$dir/final.ie" ] &&
   [ "$(readlink "$dir/final.ie")" = "$num_iters.ie" ] &&
   config_fresh "$dir" "$config" "${inputs[@]}"; then
  log "$dir: i-vector extractor already trained; skipping (--force true to redo)"
  exit 0
fi
if [ "$force" = true ] || ! config_fresh "$dir" "$config" "${inputs[@]}"; then
  [ "$force" = false ] && [ -f "$dir/config" ] && log "$dir: options, features or UBM changed since the last run; starting again"
  rm -f "$dir"/[0-9]*.ie "$dir"/acc.[0-9]*.[0-9]* "$dir"/post.[0-9]*.npz "$dir/final.ie" "$dir/final.dubm" \
    "$dir/objf" "$dir/.train.done"
  mkdir -p "$dir/log"
  for f in final.ubm cmvn_opts delta_order; do
    cp -L "$srcdir/$f" "$dir/$f.tmp"
    atomic_mv "$dir/$f.tmp" "$dir/$f"
  done
  printf -- '--num-gselect=%s\n--min-post=%s\n--posterior-scale=%s\n' \
    "$num_gselect" "$min_post" "$posterior_scale" > "$dir/posterior.conf.tmp"
  atomic_mv "$dir/posterior.conf.tmp" "$dir/posterior.conf"
  write_config "$dir" "$config"
fi
rm -f "$dir/.train.done"
printf '%s\n' "$cmdline" > "$dir/log/cmdline"
start=$(date +%s)

if [ ! -f "$dir/final.dubm" ]; then
  $cmd "$dir/log/convert.log" python3 -m mtlasr.bin.ubm_convert "$dir/final.ubm" "$dir/final.dubm" \
    || die "conversion to a diagonal UBM failed; see $dir/log/convert.log"
fi
utils/split_data.sh "$data" "$nj"
sdata=$data/split$nj
missing=false
for n in $(seq "$nj"); do [ -f "$dir/post.$n.npz" ] || missing=true; done
if [ "$missing" = true ]; then
  $cmd --num-threads "$num_threads" JOB=1:"$nj" "$dir/log/post.JOB.log" \
    python3 -m mtlasr.bin.ubm_select --num-gselect "$num_gselect" --full-ubm "$dir/final.ubm" \
      --min-post "$min_post" --posterior-scale "$posterior_scale" "$dir/final.dubm" "$sdata/JOB" "$dir/post.JOB.npz" \
    || die "UBM posteriors failed; see $dir/log/post.*.log"
fi

# The last finished iteration: the highest N.ie with N <= num_iters.
x=-1
for f in "$dir"/[0-9]*.ie; do
  [ -e "$f" ] || continue
  n=$(basename "$f" .ie)
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -le "$num_iters" ] && [ "$n" -gt "$x" ] && x=$n
done
if [ "$x" -lt 0 ]; then
  $cmd "$dir/log/init.log" \
    python3 -m mtlasr.bin.ivector_init --ivector-dim "$ivector_dim" --prior-offset "$prior_offset" \
      --seed "$seed" "$dir/final.ubm" "$dir/0.ie" \
    || die "extractor initialisation failed; see $dir/log/init.log"
  x=0
elif [ "$x" -gt 0 ]; then
  log "$dir: resuming after iteration $((x - 1)) (from $x.ie)"
fi

for ((; x < num_iters; x++)); do
  next=$((x + 1))
  rm -f "$dir"/acc."$x".[0-9]*
  $cmd --num-threads "$num_threads" JOB=1:"$nj" "$dir/log/acc.$x.JOB.log" \
    python3 -m mtlasr.bin.ivector_acc "$dir/$x.ie" "$sdata/JOB" "$dir/post.JOB.npz" "$dir/acc.$x.JOB" \
    || die "accumulation failed; see $dir/log/acc.$x.*.log"
  accs=()
  for n in $(seq "$nj"); do accs+=("$dir/acc.$x.$n"); done
  $cmd "$dir/log/est.$x.log" \
    python3 -m mtlasr.bin.ivector_est --variance-floor-factor "$variance_floor_factor" --iteration "$x" \
      --objf-file "$dir/objf" "$dir/$x.ie" "$dir/$next.ie" "${accs[@]}" \
    || die "estimation failed; see $dir/log/est.$x.log"
  rm -f "${accs[@]}"
  [ "$cleanup" = true ] && rm -f "$dir/$x.ie"
  log "$(grep -h 'iteration .*: log-likelihood per frame' "$dir/log/est.$x.log" | sed 's/.*INFO //');" \
    "job 1: $(grep -h 'frames/s' "$dir/log/acc.$x.1.log" | sed 's/.*INFO //')"
done

ln -sfn "$num_iters.ie" "$dir/final.ie"
mark_done "$dir" train
log "$dir: i-vector extractor trained in $(( $(date +%s) - start )) s (objective per iteration: $dir/objf)"
