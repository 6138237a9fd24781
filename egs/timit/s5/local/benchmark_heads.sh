#!/usr/bin/env bash
# Training cost of auxiliary heads, for the LSTM-HMM without any auxiliary
# task and with each task configuration: the floating-point operations of a
# training step per frame (counted, so they do not depend on the machine:
# train_nnet --count-flops), and seconds per epoch and frames per second.
# The configurations are trained in --rounds rounds, one after
# the other within a round, so that a slower or faster spell of the machine
# falls on every configuration alike; each prints the median seconds per
# epoch over all its epochs with the fastest and slowest epoch, and its
# median minus that of "none". Run it on an idle machine. The models go to a
# scratch dir under exp/. Needs stages 0-4 of run.sh.
set -euo pipefail

nnet_config=                       # default: the recipe's (data/local/recipe.conf, from run.sh stage 0)
epochs=3
rounds=2
threads=2
device=cpu
tasks="- conf/tasks/ivector.yaml conf/tasks/ivector_online.yaml conf/tasks/speaker.yaml conf/tasks/speaker_adv.yaml conf/tasks/broad_class.yaml conf/tasks/ivector.yaml,conf/tasks/speaker.yaml"
help_message="Usage: $0 [options]
e.g.: $0 --epochs 3 --rounds 2 --threads 2"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi
[ -n "$nnet_config" ] || nnet_config=$(local/recipe_setting.sh nnet-config)
dir=exp/benchmark_heads
mkdir -p "$dir"
names=()
# The cost that does not depend on the machine: FLOPs of a training step per frame.
for t in $tasks; do
  name=$(echo "$t" | sed 's|conf/tasks/||g; s|\.yaml||g; s|,|+|g; s|^-$|none|')
  cfgs=(--config "$nnet_config")
  if [ "$t" != - ]; then for f in ${t//,/ }; do cfgs+=(--config "$f"); done; fi
  python3 -m mtlasr.bin.train_nnet "${cfgs[@]}" --device "$device" --count-flops --set "train.num_threads=$threads" \
    data/train exp/mono_ali "$dir/$name.flops" > "$dir/$name.flops.txt" 2> "$dir/$name.flops.log" \
    || die_log "$dir/$name.flops.log" "counting the FLOPs of $t failed"
done
for ((r = 1; r <= rounds; r++)); do
  for t in $tasks; do
    name=$(echo "$t" | sed 's|conf/tasks/||g; s|\.yaml||g; s|,|+|g; s|^-$|none|')
    [ "$r" -eq 1 ] && names+=("$name")
    cfgs=(--config "$nnet_config")
    if [ "$t" != - ]; then for f in ${t//,/ }; do cfgs+=(--config "$f"); done; fi
    python3 -m mtlasr.bin.train_nnet "${cfgs[@]}" --device "$device" --force \
      --set "train.max_epochs=$epochs" --set "train.num_threads=$threads" \
      --valid-data data/dev --valid-ali exp/mono_ali_dev data/train exp/mono_ali "$dir/$name.r$r" \
      > "$dir/$name.r$r.log" 2>&1 || die_log "$dir/$name.r$r.log" "training with $t failed"
  done
  log "round $r of $rounds done"
done
python3 - "$dir" "$nnet_config, $epochs epochs x $rounds rounds, $threads threads, $device" "${names[@]}" <<'PY'
import json, statistics, sys
from pathlib import Path

d, what, names = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
epochs = {n: [r for p in sorted(d.glob(f"{n}.r*/history.json")) for r in json.loads(p.read_text())] for n in names}
flops = {n: float((d / f"{n}.flops.txt").read_text().split()[0]) for n in names}
base = statistics.median(r["seconds"] for r in epochs[names[0]])
print(f"# {what}; MFLOP per training frame (one step, forward + backward); "
      "s/epoch: median over all epochs [fastest, slowest epoch]")
for n in names:
    s = [r["seconds"] for r in epochs[n]]
    f = statistics.median(r["frames_per_second"] for r in epochs[n])
    med = statistics.median(s)
    extra = ("-", "-") if n == names[0] else (f"{100 * (flops[n] - flops[names[0]]) / flops[names[0]]:+.1f}%",
                                              f"{100 * (med - base) / base:+.1f}%")
    print(f"{n:24s} {flops[n]:7.3f} MFLOP/frame {extra[0]:>7s}   {med:5.2f} s/epoch [{min(s):.2f}, {max(s):.2f}] "
          f"{extra[1]:>7s} {f:6.0f} frames/s")
PY
