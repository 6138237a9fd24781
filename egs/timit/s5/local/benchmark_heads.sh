#!/usr/bin/env bash
# Training cost of auxiliary heads: seconds per epoch and frames per second
# of the LSTM-HMM trained without any auxiliary task and with each task
# configuration, one after the other (run it on an idle machine). Prints
# one line per configuration; the models go to a scratch dir under exp/.
# Needs stages 0-4 of run.sh.
set -euo pipefail

nnet_config=                       # default: the recipe's (data/local/recipe.conf, from run.sh stage 0)
epochs=3
threads=2
device=cpu
tasks="- conf/tasks/ivector.yaml conf/tasks/ivector_online.yaml conf/tasks/speaker.yaml conf/tasks/speaker_adv.yaml conf/tasks/broad_class.yaml conf/tasks/ivector.yaml,conf/tasks/speaker.yaml"
help_message="Usage: $0 [options]
e.g.: $0 --epochs 3 --threads 2"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi
[ -n "$nnet_config" ] || nnet_config=$(local/recipe_setting.sh nnet-config)
dir=exp/benchmark_heads
mkdir -p "$dir"
echo "# $nnet_config, $epochs epochs, $threads threads, $device; mean over epochs"
for t in $tasks; do
  name=$(echo "$t" | sed 's|conf/tasks/||g; s|\.yaml||g; s|,|+|g; s|^-$|none|')
  cfgs=(--config "$nnet_config")
  if [ "$t" != - ]; then for f in ${t//,/ }; do cfgs+=(--config "$f"); done; fi
  python3 -m mtlasr.bin.train_nnet "${cfgs[@]}" --device "$device" --force \
    --set "train.max_epochs=$epochs" --set "train.num_threads=$threads" \
    --valid-data data/dev --valid-ali exp/mono_ali_dev data/train exp/mono_ali "$dir/$name" \
    > "$dir/$name.log" 2>&1 || die_log "$dir/$name.log" "training with $t failed"
  python3 - "$dir/$name/history.json" "$name" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
s = sum(r["seconds"] for r in h) / len(h)
f = sum(r["frames_per_second"] for r in h) / len(h)
print(f"{sys.argv[2]:32s} {s:6.2f} s/epoch {f:8.0f} frames/s")
PY
done
