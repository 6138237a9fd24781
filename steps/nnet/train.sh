#!/usr/bin/env bash
# Train a neural acoustic model: an LSTM-HMM on GMM alignments, or an
# end-to-end CTC model (model.criterion: ctc in the config) on the unit
# sequences of a units dir (units.txt, from utils/prepare_units.sh or
# steps/train_sentencepiece.sh) given in place of the alignments; see
# python3 -m mtlasr.bin.train_nnet --help for what is written.
# The configs are checked before anything else. <exp-dir>/.train.record says
# what the model was made from (data, alignments, configs, overrides, the
# task target files, the code); a rerun skips while it matches. A (re)training
# runs in <exp-dir>/.next and replaces the old model only when finished; an
# interrupted one resumes there after its last finished epoch; --force true
# starts it over.
set -euo pipefail

cmd=utils/run_local.sh
nnet_config=conf/lstm.yaml
task_config=        # auxiliary task YAML files (space-separated), merged after --nnet-config
device=auto
force=false
num_gpus=1          # >1: that many processes under torchrun (DistributedDataParallel; NCCL on GPUs,
                    # gloo with --device cpu); train.minibatch is per process: the global batch is N times it
text_file=text      # ctc: transcript file of the data dirs (e.g. text.words)
extra_data=         # ctc: data dir whose utterances train the auxiliary tasks only
help_message="Usage: $0 [options] [--set key=value ...] <train-data> <train-ali> <valid-data> <valid-ali> <exp-dir>
e.g.: $0 --nnet-config conf/lstm.yaml data/train exp/mono_ali data/dev exp/mono_ali_dev exp/lstm
      $0 --set train.max_epochs=2 --set train.seed=3 data/train exp/mono_ali data/dev exp/mono_ali_dev exp/lstm_s3
      $0 --task-config conf/tasks/ivector.yaml --set tasks.ivector.weight=1e-4 \\
         data/train exp/mono_ali data/dev exp/mono_ali_dev exp/lstm_ivector
      $0 --nnet-config conf/ctc_blstm.yaml data/train data/lang_ctc data/dev data/lang_ctc exp/ctc"

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

if [ -f "$ali/units.txt" ]; then  # CTC: a units dir
  require_files "$train/feats.scp" "$train/$text_file" "$valid/feats.scp" "$valid/$text_file"
else
  require_files "$train/feats.scp" "$ali/final.mdl" "$ali/ali.1.gz" "$valid/feats.scp" "$valid_ali/ali.1.gz"
fi
[ -z "$nnet_config" ] || require_files "$nnet_config"
configs=(${nnet_config:+--config "$nnet_config"})
config_files=(${nnet_config:+"$nnet_config"})
for f in $task_config; do require_files "$f"; configs+=(--config "$f"); config_files+=("$f"); done
opts=("${configs[@]}" --valid-data "$valid" --valid-ali "$valid_ali" --text-file "$text_file" "${sets[@]}")
[ -z "$extra_data" ] || opts+=(--extra-data "$extra_data")
# The trainer checks the configs and lists the task target files now, before anything is touched.
check=$(mktemp)
if ! task_inputs=$(python3 -m mtlasr.bin.train_nnet --list-inputs "${opts[@]}" "$train" "$ali" "$dir" 2> "$check"); then
  mkdir -p "$dir/log"
  mv "$check" "$dir/log/check.log"
  die_log "$dir/log/check.log" "the configuration of $dir is not usable"
fi
rm -f "$check"
mapfile -t task_inputs <<< "$task_inputs"
[ -n "${task_inputs[0]}" ] || task_inputs=()
# (the process count changes the global minibatch; recorded only when > 1, so older records stay valid)
procs=
[ "$num_gpus" -le 1 ] || procs=" num_gpus=$num_gpus"
record=$(step_record "sets=${sets[*]} text_file=$text_file extra_data=$extra_data$procs" "${config_files[@]}" "$train/feats.scp" "$train/cmvn.scp" "$ali" \
  "$valid/feats.scp" "$valid/cmvn.scp" "$valid_ali" "${task_inputs[@]}")
if [ "$force" = false ] && [ -f "$dir/final.pt" ] && step_fresh "$dir" train "$record"; then
  log "$dir: already trained from these inputs and options; skipping (--force true to retrain)"
  exit 0
fi
# Trained in $dir/.next (resumed there if a run with the same record was
# interrupted); the finished model replaces the old one only at the end.
next=$dir/.next
if [ "$force" = true ] || ! { [ -f "$next/.started.record" ] && [ "$(cat "$next/.started.record")" = "$record" ]; }; then
  rm -rf "$next"
  mkdir -p "$next/log"
  printf '%s\n' "$record" > "$next/.started.record"
fi
launcher=(python3 -m mtlasr.bin.train_nnet)
[ "$num_gpus" -le 1 ] ||
  launcher=(python3 -m torch.distributed.run --standalone --nproc_per_node "$num_gpus" -m mtlasr.bin.train_nnet)
log "training $dir (log: $dir/log/train.log)"
$cmd --gpu "$num_gpus" "$next/log/train.log" "${launcher[@]}" --device "$device" "${opts[@]}" "$train" "$ali" "$next" \
  || die_log "$next/log/train.log" "training failed (a rerun resumes from $next)"
rm -f "$next/.started.record" "$dir"/epoch-*.pt "$dir/.train.done"
publish "$next" "$dir"
step_done "$dir" train "$record"
log "$(grep 'training done' "$dir/log/train.log" | sed 's/.*INFO //')"
