#!/usr/bin/env bash
# Train, decode and score a list of LSTM-HMM systems that differ in their
# auxiliary tasks and settings; the table scripts (local/run_table*.sh) are
# lists for this one. Needs stages 0-4 of run.sh (alignments, graph,
# i-vectors). Every step of a system skips what is up to date (its record),
# so a rerun resumes; --jobs systems run at the same time.
#
# Systems file, one per line (# comments allowed):
#   <name> <task-config>[,<task-config>...] [key=value ...]
# with "-" for no task, e.g.
#   base_s1      -                        train.seed=1
#   ivector_s1   conf/tasks/ivector.yaml  train.seed=1 tasks.ivector.weight=1e-4
# Each system is exp/<name>.
set -euo pipefail

nnet_config=                       # default: the --nnet-config of data/local/recipe.conf (run.sh stage 0)
nnet_opts=                         # overrides for every system, e.g. "train.max_epochs=5"
jobs=1                             # systems trained/decoded at the same time
nj=4                               # decoding jobs per system
threads=                           # torch threads per training (default: the config's)
device=auto
lmwts=                             # LM weights tried on dev (default: steps/decode.sh's)
help_message="Usage: $0 [options] <systems-file>
e.g.: $0 --jobs 2 --threads 1 exp/table2/systems"

[ -f ./path.sh ] && . ./path.sh
[ -f ./cmd.sh ] && . ./cmd.sh
cuda_cmd=${cuda_cmd:-utils/run_local.sh}
decode_cmd=${decode_cmd:-utils/run_local.sh}
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
systems=$1

require_files "$systems" exp/mono_ali/final.mdl exp/mono/graph/HCLG.fst data/local/recipe.conf
[ -n "$nnet_config" ] || nnet_config=$(local/recipe_setting.sh nnet-config)
logdir=$(dirname "$systems")/log
mkdir -p "$logdir"

# Check every line before starting anything.
while read -r name tasks _; do
  [ -z "$name" ] || [[ "$name" == \#* ]] && continue
  [ -n "$tasks" ] || die "$systems: system $name: no task field ('-' for none)"
  if [ "$tasks" != - ]; then
    for t in ${tasks//,/ }; do [ -f "$t" ] || die "$systems: system $name: no task config $t"; done
  fi
done < "$systems"

# run_one NAME TASKS OVERRIDES...: train, decode and score one system.
run_one() {
  local name=$1 tasks=$2 dir=exp/$1 sets=() o x
  shift 2
  for o in "$@" $nnet_opts; do sets+=(--set "$o"); done
  [ -z "$threads" ] || sets+=(--set "train.num_threads=$threads")
  [ "$tasks" = - ] && tasks=
  steps/nnet/train.sh --cmd "$cuda_cmd" --nnet-config "$nnet_config" --task-config "${tasks//,/ }" \
    --device "$device" "${sets[@]}" data/train exp/mono_ali data/dev exp/mono_ali_dev "$dir"
  for x in dev test; do
    steps/decode.sh --nj "$nj" --cmd "$decode_cmd" ${lmwts:+--lmwts "$lmwts"} exp/mono/graph data/$x "$dir/decode_$x"
  done
  local/score.sh data/dev "$dir/decode_dev"
  local/score.sh --lmwt-from "$dir/decode_dev" data/test "$dir/decode_test"
}

pids=()
names=()
while read -r name tasks rest; do
  [ -z "$name" ] || [[ "$name" == \#* ]] && continue
  # a failure is counted below, where every system's status is collected
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || log "a system failed; going on with the others"; done
  log "$name: starting (log: $logdir/$name.log)"
  # shellcheck disable=SC2086  # the overrides are separate words
  run_one "$name" "$tasks" $rest > "$logdir/$name.log" 2>&1 < /dev/null &
  pids+=($!)
  names+=("$name")
done < "$systems"
failed=()
for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]}; see $logdir/<name>.log (a rerun resumes)"
log "all systems of $systems scored"
