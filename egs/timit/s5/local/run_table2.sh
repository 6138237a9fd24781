#!/usr/bin/env bash
# Seed 000, Table 2: relative PER improvement over the single-task baseline
# of speaker classification (frame-level, conf/tasks/speaker.yaml; the
# speaker-aware LSTM of the paper's reference [25]) and of i-vector
# regression (conf/tasks/ivector.yaml, lambda 1e-4), over several seeds.
# The baseline and i-vector systems have the names local/run_table1.sh
# gives them, so they are shared with Table 1 (and skipped when done).
# Needs stages 0-4 of run.sh. Resumable; --jobs systems at a time.
set -euo pipefail

seeds="1 2 3"
spk_lambda=0.1                     # weight of speaker classification
ivector_lambda=1e-4                # weight of i-vector regression (seed 000's best)
jobs=1
threads=
nnet_opts=
results=                           # also write the table into this Markdown file
help_message="Usage: $0 [options]
e.g.: $0 --jobs 2 --threads 1 --results RESULTS.md"

cmdline="$0 $*"
[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

out=exp/table2
mkdir -p "$out"
{
  for s in $seeds; do
    echo "lstm_ivector_l0_s$s conf/tasks/ivector.yaml train.seed=$s tasks.ivector.weight=0"
    echo "lstm_ivector_l${ivector_lambda}_s$s conf/tasks/ivector.yaml train.seed=$s tasks.ivector.weight=$ivector_lambda"
    echo "lstm_speaker_l${spk_lambda}_s$s conf/tasks/speaker.yaml train.seed=$s tasks.speaker.weight=$spk_lambda"
  done
} > "$out/systems"
local/run_systems.sh --jobs "$jobs" ${threads:+--threads "$threads"} ${nnet_opts:+--nnet-opts "$nnet_opts"} \
  "$out/systems"
python3 local/make_mtl_table.py --seeds "$seeds" --command "$cmdline" \
  ${results:+--results "$results" --block table2} "$out/table2.md" \
  "single-task (STL)=lstm_ivector_l0" "speaker classification (lambda $spk_lambda)=lstm_speaker_l$spk_lambda" \
  "i-vector regression (lambda $ivector_lambda)=lstm_ivector_l$ivector_lambda"
