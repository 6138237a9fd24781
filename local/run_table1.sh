#!/usr/bin/env bash
# Seed 000, Table 1 and Fig. 3: LSTM-HMM with i-vector regression as the
# auxiliary task, for every lambda and seed; dev and test PER, mean and
# standard deviation over seeds, relative improvement over lambda = 0.
#
# Needs stages 0-4 of run.sh (alignments, graph, i-vectors). Each system is
# exp/<prefix>_l<lambda>_s<seed>, trained by steps/nnet/train.sh, decoded and
# scored as in run.sh stages 5-7; finished systems are skipped, so a rerun
# resumes. --jobs systems run at the same time. The table and the figure go
# to exp/<prefix>_table1/ and, with --results FILE, into FILE.
set -euo pipefail

lambdas="0 1e-4 5e-4 1e-3 5e-3"    # seed 000 sec. 6.2
seeds="1 2 3"                      # 3 runs per lambda, as in the paper
aux_task=ivector                   # conf/tasks/<name>.yaml
nnet_config=                       # default conf/lstm_sample.yaml (sample) or conf/lstm.yaml (--timit runs)
nnet_opts=                         # extra overrides, e.g. "train.max_epochs=5"
prefix=                            # default lstm_<aux-task>
jobs=1                             # systems trained/decoded at the same time
nj=4                               # decoding jobs per system
threads=                           # torch threads per training (default: the config's)
device=auto
lmwts="0.5 0.75 1 1.5 2 3 4 5 6 8 10 12"
results=                           # also write the table into this Markdown file (e.g. RESULTS.md)
figure=                            # also save Fig. 3 here (e.g. docs/fig3_sample.png)
help_message="Usage: $0 [options]
e.g.: $0                                   # Table 1 on the data run.sh prepared (sample or --timit)
      $0 --jobs 2 --threads 1 --results RESULTS.md
      $0 --nnet-config conf/lstm.yaml --jobs 4 --device cuda   # the paper's model on the full corpus"

cmdline="$0 $*"
[ -f ./path.sh ] && . ./path.sh
[ -f ./cmd.sh ] && . ./cmd.sh
cuda_cmd=${cuda_cmd:-utils/run_local.sh}
decode_cmd=${decode_cmd:-utils/run_local.sh}
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

task_yaml=conf/tasks/$aux_task.yaml
require_files "$task_yaml" exp/mono_ali/final.mdl exp/mono/graph/HCLG.fst
prefix=${prefix:-lstm_$aux_task}
if [ -z "$nnet_config" ]; then
  # the sample (96 training utterances) uses the small config, as run.sh does
  if [ "$(wc -l < data/train/utt2spk)" -lt 1000 ]; then nnet_config=conf/lstm_sample.yaml; else nnet_config=conf/lstm.yaml; fi
fi
out=exp/${prefix}_table1
mkdir -p "$out/log"
log "Table 1: lambdas {$lambdas}, seeds {$seeds}, $nnet_config + $task_yaml, $jobs at a time; logs in $out/log"

# run_one LAMBDA SEED: train, decode and score one system (skips what is done).
run_one() {
  local l=$1 s=$2 dir sets=() o
  dir=exp/${prefix}_l${l}_s${s}
  sets=(--set "tasks.$aux_task.weight=$l" --set "train.seed=$s")
  [ -z "$threads" ] || sets+=(--set "train.num_threads=$threads")
  for o in $nnet_opts; do sets+=(--set "$o"); done
  steps/nnet/train.sh --cmd "$cuda_cmd" --nnet-config "$nnet_config" --task-config "$task_yaml" \
    --device "$device" "${sets[@]}" data/train exp/mono_ali data/dev exp/mono_ali_dev "$dir"
  for x in dev test; do
    steps/decode.sh --nj "$nj" --cmd "$decode_cmd" --lmwts "$lmwts" exp/mono/graph data/$x "$dir/decode_$x"
  done
  local/score.sh data/dev "$dir/decode_dev"
  local/score.sh --lmwt-from "$dir/decode_dev" data/test "$dir/decode_test"
}

pids=()
failed=0
for l in $lambdas; do
  for s in $seeds; do
    if [ -f "exp/${prefix}_l${l}_s${s}/decode_test/per" ] && \
       [ "exp/${prefix}_l${l}_s${s}/decode_test/per" -nt "exp/${prefix}_l${l}_s${s}/final.pt" ]; then
      log "lambda $l seed $s: done ($(cut -d' ' -f1-2 "exp/${prefix}_l${l}_s${s}/decode_test/per"))"
      continue
    fi
    # a failure is counted below, where every system's status is collected
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || log "a system failed; going on with the others"; done
    log "lambda $l seed $s: starting (log: $out/log/l${l}_s${s}.log)"
    run_one "$l" "$s" > "$out/log/l${l}_s${s}.log" 2>&1 &
    pids+=($!)
  done
done
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
[ "$failed" -eq 0 ] || die "$failed system(s) failed; see $out/log/*.log (a rerun resumes)"
python3 local/make_table1.py --prefix "$prefix" --lambdas "$lambdas" --seeds "$seeds" \
  --command "$cmdline" ${results:+--results "$results"} ${figure:+--figure "$figure"} "$out"
cat "$out/table1.md"
