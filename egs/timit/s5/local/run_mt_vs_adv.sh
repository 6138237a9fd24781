#!/usr/bin/env bash
# Seed 002's comparison on TIMIT: a speaker branch trained as a multi-task
# auxiliary (static lambda 0.5) or adversarially (gradient reversal, lambda
# ramped to 0.2), forking from the first, middle or last shared LSTM layer
# (IN / MID / OUT), against the single-task baseline; dev and test PER.
# The branch is conf/tasks/speaker_adv.yaml (LogSumExp pooling, tau = 1,
# one hidden layer); the multi-task variant only turns its gradient
# reversal off. Training is staged as in seed 002 (main task, then the
# branch alone, then jointly) unless --staged false. The models have three
# shared layers so that IN, MID and OUT differ. Then probes the speaker
# information of every layer of the baseline and the OUT systems (first
# seed). Needs stages 0-4 of run.sh; resumable; --jobs systems at a time.
set -euo pipefail

seeds="1 2"
layers=3
stages="[[main, 4], [aux, 2], [joint, 4]]"   # 10 epochs
staged=true
mt_lambda=0.5                      # seed 002 sec. 4: MT static 0.5
adv_lambda=0.2                     # seed 002 sec. 4: AL ramped to 0.2
jobs=1
threads=
nnet_opts=
results=                           # also write the tables into this Markdown file
figure=                            # also save the probing plot here
help_message="Usage: $0 [options]
e.g.: $0 --jobs 2 --threads 1 --results RESULTS.md"

cmdline="$0 $*"
[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

out=exp/mt_vs_adv
mkdir -p "$out"
common="model.num_layers=$layers"
[ "$staged" = true ] && common+=" train.stages=${stages// /}"
{
  for s in $seeds; do
    echo "adv_base_s$s - train.seed=$s $common"
    for fork in first mid last; do
      echo "adv_mt_${fork}_s$s conf/tasks/speaker_adv.yaml train.seed=$s $common tasks.speaker_adv.fork=$fork" \
           "tasks.speaker_adv.grl=false tasks.speaker_adv.schedule=static tasks.speaker_adv.weight=$mt_lambda"
      echo "adv_al_${fork}_s$s conf/tasks/speaker_adv.yaml train.seed=$s $common tasks.speaker_adv.fork=$fork" \
           "tasks.speaker_adv.weight=$adv_lambda"
    done
  done
} > "$out/systems"
local/run_systems.sh --jobs "$jobs" ${threads:+--threads "$threads"} ${nnet_opts:+--nnet-opts "$nnet_opts"} \
  "$out/systems"
groups=("single-task=adv_base")
for fork in first mid last; do
  name=$(echo $fork | sed 's/first/IN/; s/mid/MID/; s/last/OUT/')
  groups+=("multi-task $name=adv_mt_$fork" "adversarial $name=adv_al_$fork")
done
python3 local/make_mtl_table.py --seeds "$seeds" --command "$cmdline" \
  ${results:+--results "$results" --block mt_vs_adv} "$out/mt_vs_adv.md" "${groups[@]}"

s1=${seeds%% *}
python3 -m mtlasr.bin.probe_layers --pooling frame --seeds "0 1 2 3 4" "$out/probe" data/train \
  "single-task=exp/adv_base_s$s1" \
  "multi-task OUT=exp/adv_mt_last_s$s1" "adversarial OUT=exp/adv_al_last_s$s1" > "$out/probe.log" 2>&1 \
  || die_log "$out/probe.log" "probing failed"
cat "$out/probe/probe.md"
if [ -n "$results" ]; then
  python3 - "$results" "$out/probe/probe.md" "$cmdline" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "local")
from make_mtl_table import write_into
text = "".join(l for l in Path(sys.argv[2]).read_text().splitlines(True) if not l.startswith("# "))
write_into(sys.argv[1], "probe", text.lstrip("\n") + f"\nWhole comparison: `{sys.argv[3]}`.\n")
PY
fi
[ -z "$figure" ] || { mkdir -p "$(dirname "$figure")"; cp "$out/probe/probe.png" "$figure"; }
