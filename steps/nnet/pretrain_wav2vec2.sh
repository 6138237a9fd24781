#!/usr/bin/env bash
# Self-supervised pre-training of a small wav2vec2 on a data dir's framed
# waveforms (mtlasr.bin.pretrain_wav2vec2: wav2vec 2.0's contrastive
# objective), for recipes without a public checkpoint. Writes <out-dir>
# (config.json + model.safetensors, which model.w2v2_dir reads; replaced
# only once complete), its pretrain_history.json and pretrain_curve.png, and
# <out-dir>/log/pretrain.log. Skipped while the code, options, config and
# features it was made from still match (<out-dir>/.pretrain.record).
set -euo pipefail

cmd=utils/run_local.sh
w2v2_config=           # YAML of Wav2Vec2Config fields (default: transformers' wav2vec2-base)
epochs=10
batch_size=8
max_seconds=6.0
lr=0.0005
seed=0
num_threads=1
force=false
help_message="Usage: $0 [options] <data-dir> <out-dir>
e.g.: $0 --w2v2-config conf/w2v2_pretrain.yaml --epochs 20 data/train_raw exp/w2v2_init"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 dir=$2

require_files "$data/feats.scp" ${w2v2_config:+"$w2v2_config"}
opts=(--epochs "$epochs" --batch-size "$batch_size" --max-seconds "$max_seconds" --lr "$lr" --seed "$seed"
      --num-threads "$num_threads" ${w2v2_config:+--config "$w2v2_config"})
record=$(step_record "${opts[*]}" ${w2v2_config:+"$w2v2_config"} "$data/feats.scp")
if [ "$force" = false ] && [ -f "$dir/model.safetensors" ] && step_fresh "$dir" pretrain "$record"; then
  log "$dir: already pre-trained from these inputs and options; skipping (--force true to redo)"
  exit 0
fi
logdir=$(dirname "$dir")/log
mkdir -p "$logdir"
log "pre-training a wav2vec2 on $data (log: $logdir/pretrain_$(basename "$dir").log)"
$cmd --num-threads "$num_threads" "$logdir/pretrain_$(basename "$dir").log" \
  python3 -m mtlasr.bin.pretrain_wav2vec2 "${opts[@]}" "$data" "$dir" \
  || die_log "$logdir/pretrain_$(basename "$dir").log" "wav2vec2 pre-training failed"
mkdir -p "$dir/log"
cp "$logdir/pretrain_$(basename "$dir").log" "$dir/log/pretrain.log"
step_done "$dir" pretrain "$record"
log "$(grep -E 'wrote ' "$dir/log/pretrain.log" | sed 's/.*INFO //')"
