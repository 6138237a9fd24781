#!/usr/bin/env bash
# Monophone GMM-HMM training (Kaldi's mono schedule), in one process.
# Writes <exp-dir>/final.mdl, ali.1.gz, cmvn_opts, delta_order; log in <exp-dir>/log/train.log.
# The model is also written in Kaldi's text format, <exp-dir>/kaldi/final.mdl
# and kaldi/tree, which Kaldi's gmm-align, show-transitions, gmm-copy ... read.
# Mixing up is seeded (--seed): two runs give byte-identical final.mdl and ali.1.gz.
set -euo pipefail

cmd=utils/run_local.sh
num_iters=40
max_iter_inc=30
totgauss=1000
boost_silence=1.0
norm_vars=false
delta_order=2
seed=0              # mix-up perturbations: the same seed gives the same model
force=false
help_message="Usage: $0 [options] <data-dir> <lang-dir> <exp-dir>
e.g.: $0 --totgauss 1000 data/train data/lang exp/mono"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 lang=$2 dir=$3

require_files "$data/feats.scp" "$data/cmvn.scp" "$data/text" "$lang/L.fst" "$lang/topo"
options="num_iters=$num_iters max_iter_inc=$max_iter_inc totgauss=$totgauss boost_silence=$boost_silence"
options+=" norm_vars=$norm_vars delta_order=$delta_order seed=$seed"
record=$(step_record "$options" "$data/feats.scp" "$data/cmvn.scp" "$data/text" "$lang")
if [ "$force" = false ] && [ -f "$dir/final.mdl" ] && step_fresh "$dir" train "$record"; then
  log "$dir: already trained from these inputs and options; skipping"
  exit 0
fi
utils/validate_data_dir.sh "$data" >/dev/null
# Trained in $dir/.next; the finished model replaces the old one only at the end.
next=$dir/.next
rm -rf "$next"
mkdir -p "$next/log"
log "training monophone system in $dir (log: $dir/log/train.log)"
$cmd "$next/log/train.log" \
  python3 -m mtlasr.bin.train_mono --num-iters "$num_iters" --max-iter-inc "$max_iter_inc" \
    --totgauss "$totgauss" --boost-silence "$boost_silence" --norm-vars "$norm_vars" \
    --delta-order "$delta_order" --seed "$seed" "$data" "$lang" "$next" \
  || die_log "$next/log/train.log" "monophone training failed"
$cmd "$next/log/export_kaldi.log" python3 -m mtlasr.bin.export_kaldi "$next" \
  || die_log "$next/log/export_kaldi.log" "writing the Kaldi copy of the model failed"
publish "$next" "$dir"
rm -f "$dir/.train.done"  # the marker of earlier versions
step_done "$dir" train "$record"
log "$(grep 'trained' "$dir/log/train.log" | sed 's/.*INFO //')"
