#!/usr/bin/env bash
# TIMIT LSTM-HMM recipe (seed 000): data prep, lang + phone bigram, MFCC +
# CMVN, monophone GMM-HMM and alignments, UBM + i-vector extractor +
# i-vectors, LSTM-HMM training with optional auxiliary tasks (i-vector
# regression), decoding, PER scoring. Runs on the TIMIT sample by default;
# give --timit for the LDC corpus. Run it from this directory
# (egs/timit/s5), or through the top-level ./run.sh.
#
# A rerun skips finished work and resumes unfinished work. Naming a stage
# (--stage N) redoes stages N..stop-stage from scratch.
set -euo pipefail

stage=
stop_stage=7
timit=                       # corpus root (LDC TIMIT/ or the NLTK sample); default: the sample
dev_spk_list=conf/dev_spk.list    # LDC layout: the 50 dev speakers (missing ones are warned about)
test_spk_list=conf/test_spk.list  # LDC layout: the 24 core-test speakers
nj=4                         # parallel jobs
nnet_config=                 # LSTM config (YAML); from conf/ldc.conf or conf/sample.conf
nnet_opts=                   # extra config overrides, e.g. "train.max_epochs=2 train.seed=1"
aux_task=                    # auxiliary task: conf/tasks/<name>.yaml (ivector, ivector_online, ivector_spk) or a YAML path
aux_lambda=                  # its weight lambda (default: the one in its YAML)
seed=                        # training seed (default: the config's)
nnet_tag=                    # exp/<tag>; default lstm[_<aux-task>][_l<lambda>][_s<seed>]
num_gauss=                   # UBM Gaussians (stage 4); from conf/ldc.conf or conf/sample.conf
ivector_dim=                 # i-vector dimension (stage 4); from conf/ldc.conf or conf/sample.conf
ivector_cmvn=none            # i-vector features' CMVN: none, utterance, or speaker (as the acoustic model)
ivector_iters=10             # extractor EM iterations (stage 4)
device=auto                  # training device: auto, cpu, cuda
lmwts=                       # LM weights tried on dev (default: steps/decode.sh's)
help_message="Usage: $0 [options]
e.g.: $0                                  # the whole recipe on the TIMIT sample
      $0 --timit /corpora/LDC93S1/TIMIT   # on the full corpus
      $0 --stage 5                        # retrain and rescore the LSTM from existing alignments
      $0 --stage 5 --aux-task ivector --aux-lambda 1e-4   # seed 000's MTL system (exp/lstm_ivector_l1e-4)
Stages: 0 data prep, 1 lang + LM, 2 MFCC + CMVN, 3 monophone GMM + alignments,
        4 UBM, i-vector extractor, i-vectors (+ speaker-verification EER check),
        5 LSTM training, 6 decoding, 7 scoring + results.
Settings by corpus: conf/sample.conf or conf/ldc.conf (chosen from the layout
of --timit) are read first; --config FILE and the options override them."

[ -f ./path.sh ] && . ./path.sh
[ -f ./cmd.sh ] && . ./cmd.sh
train_cmd=${train_cmd:-utils/run_local.sh}
decode_cmd=${decode_cmd:-utils/run_local.sh}
cuda_cmd=${cuda_cmd:-utils/run_local.sh}
. utils/lib.sh

# The corpus and its settings file, decided here once: the layout of --timit
# (local/timit_data_prep.py --print-layout). Stage 0 records the choice in
# data/local/recipe.conf for the other scripts of this recipe.
default_timit() {
  if [ -d "$MTL_ROOT/../shared/data/timit_sample" ]; then
    echo "$MTL_ROOT/../shared/data/timit_sample"
  else
    echo db/timit            # stage 0 downloads the sample there
  fi
}
# pick_layout OPTION...: set $layout (ldc or sample) from the --timit among
# the options (the default corpus without one; the sample for --help).
pick_layout() {
  local corpus='' i a j
  for ((i = 1; i <= $#; i++)); do
    case "${!i}" in
      --timit=*) a=${!i}; corpus=${a#--timit=} ;;
      --timit) j=$((i + 1)); corpus=${!j:-} ;;
      --help|-h) layout=sample; return 0 ;;
    esac
  done
  [ -n "$corpus" ] || corpus=$(default_timit)
  if [ "$corpus" = db/timit ] && [ ! -d db/timit ]; then
    layout=sample  # not downloaded yet
  else
    layout=$(python3 local/timit_data_prep.py --print-layout "$corpus") ||
      die "--timit $corpus: not a TIMIT corpus (see the error above)"
  fi
}
pick_layout "$@"
set -- --config "conf/$layout.conf" "$@"
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi
[ -n "$timit" ] || timit=$(default_timit)

force=false
if [ -n "$stage" ]; then force=true; else stage=0; fi
[[ $stage =~ ^[0-7]$ ]] || die "--stage must be a stage number, 0 to 7 (see --help), got '$stage'"
[[ $stop_stage =~ ^[0-7]$ ]] || die "--stop-stage must be a stage number, 0 to 7 (see --help), got '$stop_stage'"
[ "$stop_stage" -ge "$stage" ] || die "--stop-stage $stop_stage is before --stage $stage: nothing to do"
task_yaml=
if [ -n "$aux_task" ]; then
  task_yaml=$aux_task
  [[ "$task_yaml" == *.yaml ]] || task_yaml=conf/tasks/$aux_task.yaml
  [ -f "$task_yaml" ] || die "--aux-task $aux_task: no task config $task_yaml (see conf/tasks/)"
  # The task's name is the file's; the trainer checks that the file declares it.
  [ -z "$aux_lambda" ] || nnet_opts="$nnet_opts tasks.$(basename "$task_yaml" .yaml).weight=$aux_lambda"
elif [ -n "$aux_lambda" ]; then
  die "--aux-lambda needs --aux-task"
fi
[ -z "$seed" ] || nnet_opts="$nnet_opts train.seed=$seed"
if [ -z "$nnet_tag" ]; then
  nnet_tag=lstm${aux_task:+_$(basename "$task_yaml" .yaml)}${aux_lambda:+_l$aux_lambda}${seed:+_s$seed}
fi
decode_opts=(--nj "$nj" --cmd "$decode_cmd" --force "$force")
[ -z "$lmwts" ] || decode_opts+=(--lmwts "$lmwts")
nnet_sets=()
for o in $nnet_opts; do nnet_sets+=(--set "$o"); done

recipe_begin   # utils/lib.sh: lock exp/ and data/, stop the jobs on Ctrl-C
start_all=$(date +%s)

# Every config file is checked before any stage runs, so that a typo stops
# the run before it has touched anything.
[ -f "$nnet_config" ] || die "--nnet-config $nnet_config: no such file"
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  check=$(mktemp)
  if ! python3 -m mtlasr.bin.train_nnet --check-config --config "$nnet_config" ${task_yaml:+--config "$task_yaml"} \
       "${nnet_sets[@]}" data/train exp/mono_ali "exp/$nnet_tag" 2> "$check"; then
    mv "$check" exp/log/check_config.log
    die_log exp/log/check_config.log "the network configuration is not usable"
  fi
  rm -f "$check"
fi

stage0() {
  if [ "$timit" = db/timit ]; then local/download_timit_sample.sh db; fi
  log "corpus: $timit ($layout layout; settings conf/$layout.conf)"
  local/prepare_data.sh --force "$force" --dev-spk-list "$dev_spk_list" --test-spk-list "$test_spk_list" \
    "$timit" data
  mkdir -p data/local
  cp "conf/$layout.conf" data/local/recipe.conf.tmp
  replace_file data/local/recipe.conf.tmp data/local/recipe.conf
}

stage1() {
  local/timit_prepare_dict.sh data/train data/local/dict data/local/phones.48-39.map
  # Words are phones: no optional silence between them (Kaldi's TIMIT recipe does the same).
  utils/prepare_lang.sh --sil-prob 0.0 --num-sil-states 3 --num-nonsil-states 3 \
    data/local/dict sil data/local/lang_tmp data/lang
  steps/train_lm.sh --order 2 --dev-text data/dev/text data/train/text data/local/lm
  utils/format_lm.sh data/lang data/local/lm/lm.arpa data/lang_test_bg
}

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
    steps/decode.sh "${decode_opts[@]}" exp/mono/graph data/$s exp/mono/decode_$s
  done
}

stage4() {
  local s
  # MFCCs without CMVN by default: TIMIT has one channel, and per-speaker
  # CMVN removes the speaker's spectral mean that the i-vector should carry
  # (EER on the sample: none 15%, utterance 29%, speaker 36%; RESULTS.md).
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
  steps/ivector/compute_eer.sh --center exp/ivectors_train exp/ivectors_eer \
    data/dev exp/ivectors_dev data/test exp/ivectors_test
}

stage5() {
  steps/nnet/train.sh --cmd "$cuda_cmd" --nnet-config "$nnet_config" --task-config "$task_yaml" \
    --device "$device" --force "$force" "${nnet_sets[@]}" data/train exp/mono_ali data/dev exp/mono_ali_dev "exp/$nnet_tag"
}

stage6() {
  for s in dev test; do
    steps/decode.sh "${decode_opts[@]}" exp/mono/graph data/$s "exp/$nnet_tag/decode_$s"
  done
}

stage7() {
  local sys
  for sys in mono "$nnet_tag"; do
    [ -f "exp/$sys/decode_dev/.decode.record" ] || continue
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
