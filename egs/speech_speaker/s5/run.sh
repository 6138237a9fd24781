#!/usr/bin/env bash
# Joint speech and speaker recognition on one wav2vec2 encoder (seed 003,
# Vaessen and van Leeuwen): a CTC head over letters and an AAM-softmax
# speaker head on the same (or a branched) encoder, trained on disjoint
# speech and speaker batches; WER and speaker-verification EER of every
# variant of the paper's Tables 1-3 in one table, and WER against EER in a
# plot.
#
# Corpora: LibriSpeech (--librispeech: train-clean-100 for speech,
# dev-clean, test-clean) and VoxCeleb (--voxceleb1 [--voxceleb2]: speaker
# batches from VoxCeleb2 dev, else VoxCeleb1 dev; EER on the VoxCeleb1 test
# trials, --trials). Without them, a demo on English synthesised here with
# espeak-ng (the multilingual recipe's corpus script): some voices are
# transcribed speech, others speaker-only data, and held-out voices give the
# test set and its trials.
#
# Stages: 0 data, 1 features (the waveform in 10 ms frames), 2 letters,
# 3 the wav2vec2 network (a given checkpoint, converted and checked, or one
# pre-trained here on the training audio), 4 training, 5 evaluation (greedy
# CTC WER and CER; cosine-scored EER), 6 the table and the plot.
#
# A rerun skips finished work and resumes unfinished work. Naming a stage
# (--stage N) redoes stages N..stop-stage from scratch.
set -euo pipefail

stage=
stop_stage=6
librispeech=                 # LibriSpeech copy (dir holding LibriSpeech/); none: the espeak-ng demo
voxceleb1=                   # VoxCeleb1 copy (wav/ or vox1_dev_wav/ + vox1_test_wav/)
voxceleb2=                   # VoxCeleb2 copy (dev/aac/...): the speaker batches; none: VoxCeleb1 dev
trials=                      # VoxCeleb1 trial list (e.g. veri_test2.txt; local/download_voxceleb.sh)
hours=1.0                    # demo: hours of English speech to synthesise
num_speakers=40              # demo: voices in all
spk_only_speakers=12         # demo: training voices whose transcripts are withheld (the speaker batches)
test_speakers=8              # demo: held-out voices (test set and trials; as many for dev)
num_trials=2000              # demo: target and as many non-target trials (local/make_trials.py)
corpus_seed=0
nj=4
w2v2_dir=                    # a wav2vec2 checkpoint directory (e.g. wav2vec2-base); none: pre-train one here
pretrain_config=conf/w2v2_pretrain.yaml
pretrain_epochs=20
nnet_config=conf/w2v2_ctc.yaml
nnet_opts=                   # config overrides for every system, e.g. "train.max_epochs=2"
systems="stl_speech stl_speaker stl_speaker_3s static_050 static_eq5 dynamic dynamic_3s mixed first ctc_blank ctc_nonblank split branch"
spk_crop=9                   # seconds: speaker-only utterances cut to a random window this long (seed 003: 9 s)
spk_crop_short=1             # seconds: the same for the *_3s systems (seed 003 Table 1: 3 s of LibriSpeech's
                             # 12.3 s utterances; 1 s keeps that ratio on the demo's 3.6 s ones)
static_lambda=auto           # static_eq5's speech weight: auto = eq. 5 from stl_speech and stl_speaker of
                             # the same seed (local/eq5_lambda.py; the paper's averages give 0.88), or a number
split_dims=                  # explicit split: speaker dimensions d_k (default: half the hidden size)
branch_shared=               # branched encoder: shared transformer layers (default: half of them)
seeds=0                      # training seeds, e.g. "0 1 2" (mean +- std in the table)
system_jobs=1                # systems trained or evaluated at once (each: train.num_threads threads or --nj jobs)
device=auto
help_message="Usage: $0 [options]
e.g.: $0                                   # the espeak-ng demo
      $0 --librispeech /corpora --voxceleb1 /corpora/vox1 --voxceleb2 /corpora/vox2 \\
         --trials /corpora/vox1/meta/veri_test2.txt --w2v2-dir /models/wav2vec2-base
      $0 --config conf/tiny.conf           # a few minutes of speech (tests)
      $0 --stage 4 --seeds '0 1 2'         # retrain every system with 3 seeds
      $0 --seeds '0 1 2' --system-jobs 2   # two systems at a time (e.g. 2 cores, 1 thread each)
Systems (exp/<system>_s<seed>; seed 003's rows):
  stl_speech    CTC only (STL speech)
  stl_speaker   speaker head only (train.main_weight 0; STL speaker)
  stl_speaker_3s, dynamic_3s: as stl_speaker and dynamic, speaker segments of --spk-crop-short s (Table 1)
  static_050    MTL, static lambda 0.5 (eq. 4)
  static_eq5    MTL, static lambda from the STL losses (eq. 5; --static-lambda; the paper's 0.88)
  dynamic       MTL, dynamic weights (eqs. 6-7), disjoint speech / speaker batches, mean pooling
  mixed         dynamic, but speech and speaker-only utterances mixed in every batch
  first         first+cls pooling (a CLS token; Table 2)
  ctc_blank     mean over the frames whose CTC output is blank (Table 2)   ctc_nonblank: not blank
  split         explicit split: the speaker head reads d_k dimensions, CTC the rest (Table 2)
  branch        branched encoder: --branch-shared layers shared, the rest one copy per task (Table 3)
Stages: 0 data, 1 features, 2 letters, 3 wav2vec2 network, 4 training, 5 evaluation, 6 table + plot.
Settings: --config FILE (--option=value lines, e.g. conf/tiny.conf) and the options."

[ -f ./path.sh ] && . ./path.sh
[ -f ./cmd.sh ] && . ./cmd.sh
train_cmd=${train_cmd:-utils/run_local.sh}
decode_cmd=${decode_cmd:-utils/run_local.sh}
cuda_cmd=${cuda_cmd:-utils/run_local.sh}
. utils/lib.sh
. utils/jobs.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

force=false
if [ -n "$stage" ]; then force=true; else stage=0; fi
[[ $stage =~ ^[0-6]$ ]] || die "--stage must be a stage number, 0 to 6 (see --help), got '$stage'"
[[ $stop_stage =~ ^[0-6]$ ]] || die "--stop-stage must be a stage number, 0 to 6 (see --help), got '$stop_stage'"
[ "$stop_stage" -ge "$stage" ] || die "--stop-stage $stop_stage is before --stage $stage: nothing to do"
for f in "$nnet_config" "$pretrain_config" conf/tasks/spk.yaml; do [ -f "$f" ] || die "$f: no such file"; done
if [ -n "$librispeech" ]; then
  [ -n "$voxceleb1" ] || die "--librispeech needs --voxceleb1 (the speaker test set and its trials)"
  [ -n "$trials" ] || die "--voxceleb1 needs --trials (e.g. veri_test2.txt; local/download_voxceleb.sh)"
fi
for s in $systems; do
  case "$s" in stl_speech|stl_speaker|stl_speaker_3s|static_050|static_eq5|dynamic|dynamic_3s|mixed|first|ctc_blank|\
               ctc_nonblank|split|branch) ;;
    *) die "--systems: unknown system '$s' (see --help)" ;; esac
done
for s in $seeds; do [[ "$s" =~ ^[0-9]+$ ]] || die "--seeds: '$s' is not a seed number"; done
[[ $system_jobs =~ ^[1-9][0-9]*$ ]] || die "--system-jobs must be a positive integer, got '$system_jobs'"
[[ $static_lambda = auto || $static_lambda =~ ^(0([.][0-9]+)?|1([.]0+)?)$ ]] ||
  die "--static-lambda: auto or a weight in [0, 1], got '$static_lambda'"
for s in "$spk_crop" "$spk_crop_short"; do
  [[ $s =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--spk-crop, --spk-crop-short: seconds (0 = whole utterances), got '$s'"
done
nnet_sets=()
for o in $nnet_opts; do nnet_sets+=(--set "$o"); done

recipe_begin   # utils/lib.sh: lock exp/ and data/, stop the jobs on Ctrl-C

# stage0_fresh RECORD: whether data/{train,train_spk,dev,test,spk_test} were
# made from what RECORD says (data/.stage0.record); a rerun must not copy
# them again, which would drop their features
stage0_fresh() {
  [ "$force" = false ] && [ -f data/spk_test/trials ] && step_fresh data stage0 "$1" &&
    log "data/{train,train_spk,dev,test,spk_test}: made from these inputs; skipping"
}

stage0() {
  local rec
  if [ -n "$librispeech" ]; then
    rec=$(step_record "nj=$nj" "tree:$librispeech" "tree:$voxceleb1" ${voxceleb2:+"tree:$voxceleb2"} "$trials")
    ! stage0_fresh "$rec" || return 0
    python3 local/librispeech_data_prep.py --root "$librispeech" --sets train-clean-100,dev-clean,test-clean data
    # the speaker batches: VoxCeleb2 dev, else VoxCeleb1 dev
    local spk=voxceleb2_dev vox1_sets=test
    [ -n "$voxceleb2" ] || { spk=voxceleb1_dev; vox1_sets="dev test"; }
    local vox=(--vox1 "$voxceleb1" --vox1-sets "${vox1_sets// /,}" --trials "trials=$trials")
    [ -z "$voxceleb2" ] || vox+=(--vox2 "$voxceleb2" --vox2-sets dev)
    python3 local/voxceleb_data_prep.py "${vox[@]}" --nj "$nj" data
    utils/copy_data_dir.sh data/train_clean_100 data/train
    utils/copy_data_dir.sh data/dev_clean data/dev
    utils/copy_data_dir.sh data/test_clean data/test
    utils/copy_data_dir.sh "data/$spk" data/train_spk
    utils/copy_data_dir.sh data/voxceleb1_test data/spk_test
    cp data/voxceleb1_test/trials data/spk_test/trials
    step_done data stage0 "$rec"
    return 0
  fi
  # The demo: English voices from the multilingual recipe's synthesiser.
  python3 "$MTL_ROOT/egs/multiling_espeak/s5/local/make_espeak_corpus.py" --out-dir data/local/espeak \
    --data-dir data/local/espeak_dirs --languages en --hours "$hours" --num-speakers "$num_speakers" \
    --dev-speakers "$test_speakers" --test-speakers "$test_speakers" --seed "$corpus_seed" --nj "$nj"
  # (the training text is the words; written before the record, which covers this tree)
  cmp -s data/local/espeak_dirs/train/text.words data/local/espeak_dirs/train/text ||
    cp data/local/espeak_dirs/train/text.words data/local/espeak_dirs/train/text
  rec=$(step_record "spk_only_speakers=$spk_only_speakers num_trials=$num_trials corpus_seed=$corpus_seed" \
    tree:data/local/espeak_dirs)
  ! stage0_fresh "$rec" || return 0
  local s
  for s in dev test; do
    utils/copy_data_dir.sh "data/local/espeak_dirs/$s" "data/$s"
    cp "data/local/espeak_dirs/$s/text.words" "data/$s/text"
  done
  # The last --spk-only-speakers training voices lose their transcripts:
  # data/train_spk, the speaker batches.
  cut -d' ' -f1 data/local/espeak_dirs/train/spk2utt | tail -n "$spk_only_speakers" > data/local/spk_only
  cut -d' ' -f1 data/local/espeak_dirs/train/spk2utt | head -n "-$spk_only_speakers" > data/local/transcribed
  [ -s data/local/transcribed ] || die "--spk-only-speakers $spk_only_speakers leaves no transcribed voice"
  [ -s data/local/spk_only ] || die "--spk-only-speakers must be at least 1 (the speaker batches)"
  utils/subset_data_dir.sh --spk-list data/local/transcribed data/local/espeak_dirs/train data/train
  utils/subset_data_dir.sh --spk-list data/local/spk_only data/local/espeak_dirs/train data/train_spk
  rm -f data/train_spk/text data/train_spk/text.words
  # EER on the test voices, none of which any system trains on
  utils/copy_data_dir.sh data/test data/spk_test
  python3 local/make_trials.py --num-targets "$num_trials" --num-nontargets "$num_trials" --seed "$corpus_seed" \
    data/spk_test data/spk_test/trials
  step_done data stage0 "$rec"
}

stage1() {
  local s
  for s in train train_spk dev test spk_test; do
    steps/make_mfcc.sh --nj "$nj" --cmd "$train_cmd" --mfcc-config conf/mfcc.conf --raw-frames 160 \
      --force "$force" "data/$s" "exp/make_raw/$s" raw
    # (not used: the networks normalise the waveform; the steps expect cmvn.scp)
    steps/compute_cmvn_stats.sh --force "$force" "data/$s" "exp/make_raw/$s" raw
    utils/validate_data_dir.sh --no-text "data/$s"
  done
}

stage2() {
  utils/prepare_units.sh --unit-type letter --allow-new true data/train/text data/dev/text data/test/text \
    data/lang_char
}

# The network every system starts from: exp/w2v2_init
stage3() {
  if [ -n "$w2v2_dir" ]; then
    python3 -m mtlasr.bin.prepare_wav2vec2 "$w2v2_dir" exp/w2v2_init > exp/log/prepare_wav2vec2.log 2>&1 ||
      die_log exp/log/prepare_wav2vec2.log "the wav2vec2 checkpoint $w2v2_dir is not usable"
    cat exp/log/prepare_wav2vec2.log
    return 0
  fi
  utils/combine_data.sh data/local/pretrain data/train data/train_spk
  steps/nnet/pretrain_wav2vec2.sh --cmd "$cuda_cmd" --w2v2-config "$pretrain_config" --epochs "$pretrain_epochs" \
    --seed "$corpus_seed" --force "$force" data/local/pretrain exp/w2v2_init
}

# train_system SYSTEM SEED: exp/<system>_s<seed>
train_system() {
  local sys=$1 seed=$2
  local common=(--cmd "$cuda_cmd" --device "$device" --force "$force" --nnet-config "$nnet_config"
                --set model.w2v2_dir=exp/w2v2_init "${nnet_sets[@]}" --set "train.seed=$seed")
  local dirs=(data/train data/lang_char data/dev data/lang_char "exp/${sys}_s$seed")
  if [ "$sys" = stl_speech ]; then
    steps/nnet/train.sh "${common[@]}" "${dirs[@]}"
    return
  fi
  # speaker segments in 10 ms frames
  local secs=$spk_crop crop
  [[ $sys != *_3s ]] || secs=$spk_crop_short
  crop=$(awk -v s="$secs" 'BEGIN { printf "%d", 100 * s + 0.5 }')
  local o=(--set "sequence.crop_untranscribed=$crop")
  case "$sys" in
    stl_speaker|stl_speaker_3s) o+=(--set train.main_weight=0 --set tasks.spk.schedule=static --set tasks.spk.weight=1) ;;
    static_050) o+=(--set train.main_weight=0.5 --set tasks.spk.schedule=static --set tasks.spk.weight=0.5) ;;
    static_eq5)
      local lam=$static_lambda
      if [ "$lam" = auto ]; then
        lam=$(python3 local/eq5_lambda.py "exp/stl_speech_s$seed" "exp/stl_speaker_s$seed") ||
          die "static_eq5: eq. 5 needs the trained stl_speech and stl_speaker of seed $seed"
      fi
      o+=(--set "train.main_weight=$lam" --set tasks.spk.schedule=static
          --set "tasks.spk.weight=$(awk -v l="$lam" 'BEGIN { printf "%.4f", 1 - l }')") ;;
    dynamic|dynamic_3s) ;;
    mixed) o+=(--set train.batching=mixed) ;;
    first) o+=(--set model.cls_token=true --set tasks.spk.pooling=first) ;;
    ctc_blank|ctc_nonblank) o+=(--set "tasks.spk.pooling=$sys") ;;
    split) o+=(--set "tasks.spk.split=${split_dims:-$((hidden / 2))}") ;;
    # shared layers: the CNN (layer 1) and --branch-shared transformer layers
    branch) o+=(--set "tasks.spk.branch=$((${branch_shared:-$((layers / 2))} + 1))") ;;
  esac
  steps/nnet/train.sh "${common[@]}" --task-config conf/tasks/spk.yaml --extra-data data/train_spk \
    "${o[@]}" "${dirs[@]}"
}

stage4() {
  local seed sys
  # the network's size, for the split and branch defaults (read once)
  read -r hidden layers < <(python3 -c "import json; c = json.load(open('exp/w2v2_init/config.json'));
print(c['hidden_size'], c['num_hidden_layers'])")
  jobs_init "$system_jobs"   # utils/jobs.sh: --system-jobs systems at once
  # the single-task systems first: static_eq5 takes its weight from their losses
  for seed in $seeds; do
    for sys in $systems; do
      [[ $sys != stl_* ]] || jobs_run "${sys}_s$seed" train_system "$sys" "$seed"
    done
  done
  jobs_wait
  for seed in $seeds; do
    for sys in $systems; do
      [[ $sys = stl_* ]] || jobs_run "${sys}_s$seed" train_system "$sys" "$seed"
    done
  done
  jobs_wait
}

# evaluate SYSTEM-DIR SYSTEM: greedy CTC WER and CER on the test set (no
# LM: nothing is tuned on dev), EER on the speaker test trials
evaluate() {
  local nnet=$1 sys=$2
  if [[ $sys != stl_speaker* ]]; then
    steps/nnet/compute_ctc_logprobs.sh --nj "$nj" --cmd "$decode_cmd" --force "$force" \
      "$nnet" data/test "$nnet/logprobs_test"
    steps/decode_ctc.sh --nj "$nj" --cmd "$decode_cmd" --force "$force" --word-sep "<space>" \
      "$nnet/logprobs_test" data/test "$nnet/decode_greedy_test"
    steps/score.sh --metric wer data/test "$nnet/decode_greedy_test"
    steps/score.sh --metric cer data/test "$nnet/decode_greedy_test"
  fi
  if [ "$sys" != stl_speech ]; then
    steps/nnet/speaker_eer.sh --force "$force" "$nnet" data/spk_test data/spk_test/trials "$nnet/eer_spk_test"
  fi
}

stage5() {
  local seed sys
  utils/split_data.sh data/test "$nj"   # once, before the jobs that read the split
  jobs_init "$system_jobs"
  for seed in $seeds; do
    for sys in $systems; do jobs_run "eval_${sys}_s$seed" evaluate "exp/${sys}_s$seed" "$sys"; done
  done
  jobs_wait
}

stage6() {
  mkdir -p exp/results
  python3 local/make_table.py --systems "$systems" --seeds "$seeds" --out exp/results/table.md \
    --plot exp/results/wer_eer.png exp
  cat exp/results/table.md
}

run_stage 0 "data" stage0
run_stage 1 "waveform frames" stage1
run_stage 2 "letters" stage2
run_stage 3 "wav2vec2 network" stage3
run_stage 4 "training" stage4
run_stage 5 "evaluation (WER, EER)" stage5
run_stage 6 "table + plot" stage6
log "done"
