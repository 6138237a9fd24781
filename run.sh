#!/usr/bin/env bash
# TIMIT LSTM-HMM recipe (seed 000): data prep, lang + phone bigram, MFCC +
# CMVN, monophone GMM-HMM and alignments, UBM + i-vector extractor +
# i-vectors, LSTM-HMM training with optional auxiliary tasks (i-vector
# regression), decoding, PER scoring. Runs on the TIMIT sample by default; give --timit for the LDC corpus.
#
# A rerun skips finished work and resumes unfinished work. Naming a stage
# (--stage N) redoes stages N..stop-stage from scratch.
set -euo pipefail

stage=
stop_stage=7
timit=                       # corpus root (LDC TIMIT/ or the NLTK sample); default: the sample
nj=4                         # parallel jobs
nnet_config=                 # LSTM config (YAML); default conf/lstm.yaml (seed 000), conf/lstm_sample.yaml on the sample
nnet_opts=                   # extra config overrides, e.g. "train.max_epochs=2 train.seed=1"
aux_task=                    # auxiliary task: conf/tasks/<name>.yaml (ivector, ivector_online, ivector_spk) or a YAML path
aux_lambda=                  # its weight lambda (default: the one in its YAML)
seed=                        # training seed (default: the config's)
nnet_tag=                    # exp/<tag>; default lstm[_<aux-task>][_l<lambda>][_s<seed>]
num_gauss=                   # UBM Gaussians (stage 4); default 256 (seed 000), 64 on the sample
ivector_dim=                 # i-vector dimension (stage 4); default 100 (seed 000), 32 on the sample
ivector_cmvn=none            # i-vector features' CMVN: none, utterance, or speaker (as the acoustic model)
ivector_iters=10             # extractor EM iterations (stage 4)
device=auto                  # training device: auto, cpu, cuda
lmwts="0.5 0.75 1 1.5 2 3 4 5 6 8 10 12"                   # LM weights tried on dev
help_message="Usage: $0 [options]
e.g.: $0                                  # the whole recipe on the TIMIT sample
      $0 --timit /corpora/LDC93S1/TIMIT   # on the full corpus
      $0 --stage 5                        # retrain and rescore the LSTM from existing alignments
      $0 --stage 5 --aux-task ivector --aux-lambda 1e-4   # seed 000's MTL system (exp/lstm_ivector_l1e-4)
Stages: 0 data prep, 1 lang + LM, 2 MFCC + CMVN, 3 monophone GMM + alignments,
        4 UBM, i-vector extractor, i-vectors (+ speaker-verification EER check),
        5 LSTM training, 6 decoding, 7 scoring + results."

[ -f ./path.sh ] && . ./path.sh
[ -f ./cmd.sh ] && . ./cmd.sh
train_cmd=${train_cmd:-utils/run_local.sh}
decode_cmd=${decode_cmd:-utils/run_local.sh}
cuda_cmd=${cuda_cmd:-utils/run_local.sh}
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

force=false
# The sample (no TRAIN/ and TEST/ dirs) gets the small-data defaults, also when given with --timit.
on_sample=true
if [ -n "$timit" ] && { [ -d "$timit/TRAIN" ] || [ -d "$timit/train" ]; }; then on_sample=false; fi
if [ -n "$stage" ]; then force=true; else stage=0; fi
task_yaml=
if [ -n "$aux_task" ]; then
  task_yaml=$aux_task
  [[ "$task_yaml" == *.yaml ]] || task_yaml=conf/tasks/$aux_task.yaml
  [ -f "$task_yaml" ] || die "--aux-task $aux_task: no task config $task_yaml (see conf/tasks/)"
  aux_name=$(basename "$task_yaml" .yaml)
  if [ -n "$aux_lambda" ]; then
    grep -q "^  $aux_name:" "$task_yaml" \
      || die "--aux-lambda sets tasks.$aux_name.weight, but $task_yaml declares no task $aux_name (set each weight with --nnet-opts)"
    nnet_opts="$nnet_opts tasks.$aux_name.weight=$aux_lambda"
  fi
elif [ -n "$aux_lambda" ]; then
  die "--aux-lambda needs --aux-task"
fi
[ -z "$seed" ] || nnet_opts="$nnet_opts train.seed=$seed"
if [ -z "$nnet_tag" ]; then
  nnet_tag=lstm${aux_task:+_$(basename "$task_yaml" .yaml)}${aux_lambda:+_l$aux_lambda}${seed:+_s$seed}
fi
mkdir -p exp/log
start_all=$(date +%s)

# run_stage N "description" command...: run one stage if selected, timing it.
run_stage() {
  local n=$1 desc=$2 t0
  shift 2
  if [ "$stage" -le "$n" ] && [ "$stop_stage" -ge "$n" ]; then
    log "Stage $n: $desc"
    t0=$(date +%s)
    "$@"
    echo "stage $n ($desc): $(( $(date +%s) - t0 )) s" | tee -a exp/log/stage_times.log >&2
  fi
}

stage0() {
  if [ -z "$timit" ]; then
    if [ -d ../shared/data/timit_sample ]; then
      timit=../shared/data/timit_sample
    else
      local/download_timit_sample.sh db
      timit=db/timit
    fi
  fi
  log "corpus: $timit"
  python3 local/timit_data_prep.py "$timit" data
  for s in train dev test; do utils/validate_data_dir.sh --no-feats data/$s; done
}

stage1() { local/timit_prepare_lang.sh data/train data; }

stage2() {
  for s in train dev test; do
    steps/make_mfcc.sh --nj "$nj" --cmd "$train_cmd" --force "$force" data/$s exp/make_mfcc/$s mfcc
    steps/compute_cmvn_stats.sh --force "$force" data/$s exp/make_mfcc/$s mfcc
    utils/validate_data_dir.sh data/$s
  done
}

stage3() {
  steps/train_mono.sh --cmd "$train_cmd" --force "$force" data/train data/lang exp/mono
  steps/align_si.sh --nj "$nj" --cmd "$train_cmd" --force "$force" data/train data/lang exp/mono exp/mono_ali
  steps/align_si.sh --nj "$nj" --cmd "$train_cmd" --force "$force" data/dev data/lang exp/mono exp/mono_ali_dev
  steps/mkgraph.sh data/lang_test_bg exp/mono exp/mono/graph
  for s in dev test; do
    steps/decode.sh --nj "$nj" --cmd "$decode_cmd" --lmwts "$lmwts" --force "$force" \
      exp/mono/graph data/$s exp/mono/decode_$s
  done
}

stage4() {
  local s
  # The sample's 96 training utterances cannot estimate a 100-dim total
  # variability space (its rank is at most the number of utterances), nor
  # 256 full covariances (114 frames each): it gets smaller defaults.
  # MFCCs without CMVN by default: TIMIT has one channel, and per-speaker
  # CMVN removes the speaker's spectral mean that the i-vector should carry
  # (EER on the sample: none 15%, utterance 29%, speaker 36%; RESULTS.md).
  if [ "$on_sample" = true ]; then num_gauss=${num_gauss:-64} ivector_dim=${ivector_dim:-32}; fi
  num_gauss=${num_gauss:-256} ivector_dim=${ivector_dim:-100}
  steps/ivector/train_diag_ubm.sh --nj "$nj" --cmd "$train_cmd" --num-gauss "$num_gauss" \
    --cmvn-mode "$ivector_cmvn" --force "$force" data/train exp/ivector/diag_ubm
  steps/ivector/train_full_ubm.sh --nj "$nj" --cmd "$train_cmd" --force "$force" \
    data/train exp/ivector/diag_ubm exp/ivector/full_ubm
  steps/ivector/train_ivector_extractor.sh --nj "$nj" --cmd "$train_cmd" --ivector-dim "$ivector_dim" \
    --num-iters "$ivector_iters" --force "$force" data/train exp/ivector/full_ubm exp/ivector/extractor
  for s in train dev test; do
    steps/ivector/extract_ivectors.sh --nj "$nj" --cmd "$train_cmd" --online true --force "$force" \
      data/$s exp/ivector/extractor exp/ivectors_$s
  done
  # Speaker identity in the i-vectors: verification between utterances of
  # the held-out (dev + test) speakers, cosine scoring.
  mkdir -p exp/ivectors_eer/log
  python3 -m mtlasr.bin.ivector_eer --center exp/ivectors_train exp/ivectors_eer \
    data/dev exp/ivectors_dev data/test exp/ivectors_test > exp/ivectors_eer/log/eer.log 2>&1 \
    || die "EER check failed; see exp/ivectors_eer/log/eer.log"
  log "i-vectors of held-out speakers: $(cat exp/ivectors_eer/eer)"
}

stage5() {
  local opts=()
  if [ -z "$nnet_config" ]; then
    if [ "$on_sample" = true ]; then nnet_config=conf/lstm_sample.yaml; else nnet_config=conf/lstm.yaml; fi
  fi
  for o in $nnet_opts; do opts+=(--set "$o"); done
  steps/nnet/train.sh --cmd "$cuda_cmd" --nnet-config "$nnet_config" --task-config "$task_yaml" \
    --device "$device" --force "$force" "${opts[@]}" data/train exp/mono_ali data/dev exp/mono_ali_dev "exp/$nnet_tag"
}

stage6() {
  for s in dev test; do
    steps/decode.sh --nj "$nj" --cmd "$decode_cmd" --lmwts "$lmwts" --force "$force" \
      exp/mono/graph data/$s "exp/$nnet_tag/decode_$s"
  done
}

stage7() {
  local sys
  for sys in mono "$nnet_tag"; do
    [ -f "exp/$sys/decode_dev/.decode.done" ] || continue
    local/score.sh data/dev "exp/$sys/decode_dev"
    local/score.sh --lmwt-from "exp/$sys/decode_dev" data/test "exp/$sys/decode_test"
  done
  python3 local/make_results.py exp/results.md mono "$nnet_tag"
  cat exp/results.md
}

run_stage 0 "data preparation" stage0
run_stage 1 "dict, lang, phone bigram LM" stage1
run_stage 2 "MFCC and CMVN" stage2
run_stage 3 "monophone GMM-HMM, alignments, GMM decoding" stage3
run_stage 4 "UBM, i-vector extractor, i-vectors" stage4
run_stage 5 "LSTM-HMM training" stage5
run_stage 6 "LSTM-HMM decoding" stage6
run_stage 7 "scoring" stage7
log "done in $(( $(date +%s) - start_all )) s (stage times: exp/log/stage_times.log)"
