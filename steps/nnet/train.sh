#!/usr/bin/env bash
# Train a neural acoustic model (LSTM-HMM) on GMM alignments; see
# python3 -m mtlasr.bin.train_nnet --help for what is written.
# A rerun resumes after the last finished epoch; --force true starts over.
set -euo pipefail

cmd=utils/run_local.sh
nnet_config=conf/lstm.yaml
task_config=        # auxiliary task YAML files (space-separated), merged after --nnet-config
device=auto
force=false
num_gpus=1          # >1: torchrun with DistributedDataParallel
help_message="Usage: $0 [options] [--set key=value ...] <train-data> <train-ali> <valid-data> <valid-ali> <exp-dir>
e.g.: $0 --nnet-config conf/lstm.yaml data/train exp/mono_ali data/dev exp/mono_ali_dev exp/lstm
      $0 --set train.max_epochs=2 --set train.seed=3 data/train exp/mono_ali data/dev exp/mono_ali_dev exp/lstm_s3
      $0 --task-config conf/tasks/ivector.yaml --set tasks.ivector.weight=1e-4 \\
         data/train exp/mono_ali data/dev exp/mono_ali_dev exp/lstm_ivector"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
# --set may repeat, so it is collected before the generic parser sees the rest.
sets=()
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --set) sets+=(--set "$2"); shift 2 ;;
    --set=*) sets+=(--set "${1#--set=}"); shift ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]}"
. utils/parse_options.sh
if [ $# -ne 5 ]; then echo "$help_message" >&2; exit 1; fi
train=$1 ali=$2 valid=$3 valid_ali=$4 dir=$5

require_files "$train/feats.scp" "$ali/final.mdl" "$ali/ali.1.gz" "$valid/feats.scp" "$valid_ali/ali.1.gz"
[ -z "$nnet_config" ] || require_files "$nnet_config"
configs=(${nnet_config:+--config "$nnet_config"})
for f in $task_config; do require_files "$f"; configs+=(--config "$f"); done
if [ "$force" = false ] && done_marker_ok "$dir" train && [ -f "$dir/final.pt" ]; then
  log "$dir: already trained; skipping (--force true to retrain)"
  exit 0
fi
mkdir -p "$dir/log"
rm -f "$dir/.train.done"
opts=("${configs[@]}" --device "$device" --valid-data "$valid" --valid-ali "$valid_ali" "${sets[@]}")
[ "$force" = true ] && opts+=(--force)
launcher=(python3 -m mtlasr.bin.train_nnet)
[ "$num_gpus" -gt 1 ] && launcher=(torchrun --standalone --nproc_per_node "$num_gpus" -m mtlasr.bin.train_nnet)
log "training $dir (log: $dir/log/train.log)"
$cmd --gpu "$num_gpus" "$dir/log/train.log" "${launcher[@]}" "${opts[@]}" "$train" "$ali" "$dir" \
  || die_log "$dir/log/train.log" "training failed"
mark_done "$dir" train
log "$(grep 'training done' "$dir/log/train.log" | sed 's/.*INFO //')"
