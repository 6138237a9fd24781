#!/usr/bin/env bash
# Seed 000, Table 1 and Fig. 3: LSTM-HMM with i-vector regression as the
# auxiliary task, for every lambda and seed; dev and test PER, mean and
# standard deviation over seeds, relative improvement over lambda = 0.
#
# Needs stages 0-4 of run.sh (alignments, graph, i-vectors). Each system is
# exp/<prefix>_l<lambda>_s<seed>, trained, decoded and scored by
# local/run_systems.sh as in run.sh stages 5-7; finished systems are
# skipped, so a rerun resumes. --jobs systems run at the same time. The table and the figure go
# to exp/<prefix>_table1/ and, with --results FILE, into FILE.
set -euo pipefail

lambdas="0 1e-4 5e-4 1e-3 5e-3"    # seed 000 sec. 6.2
seeds="1 2 3"                      # 3 runs per lambda, as in the paper
aux_task=ivector                   # conf/tasks/<name>.yaml
nnet_config=                       # default: the recipe's (data/local/recipe.conf, from run.sh stage 0)
nnet_opts=                         # extra overrides, e.g. "train.max_epochs=5"
prefix=                            # default lstm_<aux-task>
jobs=1                             # systems trained/decoded at the same time
nj=4                               # decoding jobs per system
threads=                           # torch threads per training (default: the config's)
device=auto
lmwts=                             # LM weights tried on dev (default: steps/decode.sh's)
results=                           # also write the table into this Markdown file (e.g. RESULTS.md)
figure=                            # also save Fig. 3 here (e.g. docs/fig3_sample.png)
help_message="Usage: $0 [options]
e.g.: $0                                   # Table 1 on the data run.sh prepared (sample or --timit)
      $0 --jobs 2 --threads 1 --results RESULTS.md
      $0 --nnet-config conf/lstm.yaml --jobs 4 --device cuda   # the paper's model on the full corpus"

cmdline="$0 $*"
[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

task_yaml=conf/tasks/$aux_task.yaml
require_files "$task_yaml"
prefix=${prefix:-lstm_$aux_task}
out=exp/${prefix}_table1
mkdir -p "$out"
log "Table 1: lambdas {$lambdas}, seeds {$seeds}, $task_yaml; systems in $out/systems"
for l in $lambdas; do
  for s in $seeds; do
    echo "${prefix}_l${l}_s${s} $task_yaml tasks.$aux_task.weight=$l train.seed=$s"
  done
done > "$out/systems"
local/run_systems.sh --jobs "$jobs" --nj "$nj" --device "$device" ${lmwts:+--lmwts "$lmwts"} \
  ${nnet_config:+--nnet-config "$nnet_config"} ${threads:+--threads "$threads"} \
  ${nnet_opts:+--nnet-opts "$nnet_opts"} "$out/systems"
python3 local/make_table1.py --prefix "$prefix" --lambdas "$lambdas" --seeds "$seeds" \
  --command "$cmdline" ${results:+--results "$results"} ${figure:+--figure "$figure"} "$out"
cat "$out/table1.md"
