#!/usr/bin/env bash
# Multilingual end-to-end CTC phone recogniser with language- and
# speaker-recognition sub-tasks behind gradient reversal layers (seed 004,
# Hayakawa et al.), on a corpus synthesised here with espeak-ng from the
# Debian fortunes in English, German, Spanish and Italian (shared IPA
# phones). Stages: 0 corpus synthesis, 1 features (40-dim MFCC + CMVN),
# 2 units, language subsets and per-language phone trigram LMs, 3 training
# (monolingual baselines, multilingual CTC pre-training with a language
# curriculum, then multi-task systems initialised from it), 4 decoding with
# the language's phone LM (LM weight chosen on dev) and PER scoring, 5 the
# per-language PER table (Table 3) in exp/results/table3.md and Fig. 4
# (PCA of the conv front end's utterance means) in exp/results/fig4.png.
#
# A rerun skips finished work and resumes unfinished work. Naming a stage
# (--stage N) redoes stages N..stop-stage from scratch.
set -euo pipefail

stage=
stop_stage=5
hours=5.0                    # audio to synthesise, all languages together
languages=en,de,es,it        # espeak-ng languages (local/make_espeak_corpus.py --help)
num_speakers=20              # voice variant x pitch x speed combinations
dev_speakers=3
test_speakers=3
corpus_seed=0                # sentence choice and order
nj=4                         # parallel jobs
nnet_config=conf/ctc_blstm.yaml
nnet_opts=                   # config overrides for every system, e.g. "train.max_epochs=2"
mono_epochs=                 # epochs of each monolingual baseline (default: the config's train.max_epochs)
mtl_epochs=3                 # epochs of the systems started from the pre-trained one (seed 004: 10; conf/ctc_blstm_paper.yaml)
systems="mono multi multi_cont multi_lr multi_sr multi_lr_sr"
seeds=0                      # training seeds, e.g. "0 1 2" (mean +- std in the table)
system_jobs=1                # systems trained or decoded at once (each: train.num_threads threads or --nj jobs)
lm_order=3                   # per-language phone n-gram
lm_weights="0 0.25 0.5 0.75 1 1.5"   # LM weights tried on dev
beam=20
device=auto
help_message="Usage: $0 [options]
e.g.: $0                                  # the whole recipe (about 5 h of speech)
      $0 --config conf/tiny.conf          # a few minutes of speech, small network (tests)
      $0 --stage 3 --seeds '0 1 2'        # retrain every system with 3 seeds
      $0 --stage 3 --systems 'multi multi_lr'
      $0 --nj 1 --system-jobs 2 --nnet-opts train.num_threads=1   # two systems at a time on 2 cores
Systems (exp/ctc_<system>_s<seed>):
  mono         one model per language, trained on that language only (Baseline)
  multi        all languages, curriculum (seed 004 sec. 3.2: es, +en, +de, all) (CTC pre-train)
  multi_cont   multi trained --mtl-epochs more without sub-tasks (control for the extra epochs)
  multi_lr     multi + language recognition behind a GRL (beta 20)          (ASR+LR)
  multi_sr     multi + speaker recognition behind a GRL (beta 5)            (ASR+SR)
  multi_lr_sr  both (beta 10 and 2.5)                                       (ASR+LR+SR)
Stages: 0 corpus, 1 features, 2 units + LMs, 3 training, 4 decoding + PER, 5 table + Fig. 4.
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
[[ $stage =~ ^[0-5]$ ]] || die "--stage must be a stage number, 0 to 5 (see --help), got '$stage'"
[[ $stop_stage =~ ^[0-5]$ ]] || die "--stop-stage must be a stage number, 0 to 5 (see --help), got '$stop_stage'"
[ "$stop_stage" -ge "$stage" ] || die "--stop-stage $stop_stage is before --stage $stage: nothing to do"
[ -f "$nnet_config" ] || die "--nnet-config $nnet_config: no such file"
IFS=, read -r -a langs <<< "$languages"
for s in $systems; do
  case "$s" in mono|multi|multi_cont|multi_lr|multi_sr|multi_lr_sr) ;; *) die "--systems: unknown system '$s' (see --help)" ;; esac
done
for s in $seeds; do [[ "$s" =~ ^[0-9]+$ ]] || die "--seeds: '$s' is not a seed number"; done
[[ $system_jobs =~ ^[1-9][0-9]*$ ]] || die "--system-jobs must be a positive integer, got '$system_jobs'"
[ -z "$mono_epochs" ] || [[ $mono_epochs =~ ^[1-9][0-9]*$ ]] || die "--mono-epochs must be a positive integer"
nnet_sets=()
for o in $nnet_opts; do nnet_sets+=(--set "$o"); done

recipe_begin   # utils/lib.sh: lock exp/ and data/, stop the jobs on Ctrl-C

# The network config and every system's overrides are checked before any stage runs.
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  for t in "" conf/tasks/lang.yaml conf/tasks/spk.yaml; do
    python3 -m mtlasr.bin.train_nnet --check-config --config "$nnet_config" ${t:+--config "$t"} \
      "${nnet_sets[@]}" data/train data/lang_ctc exp/check > exp/log/check_config.log 2>&1 ||
      die_log exp/log/check_config.log "the network configuration is not usable"
  done
fi

stage0() {
  python3 local/make_espeak_corpus.py --out-dir data/local/espeak --data-dir data --hours "$hours" \
    --languages "$languages" --num-speakers "$num_speakers" --dev-speakers "$dev_speakers" \
    --test-speakers "$test_speakers" --seed "$corpus_seed" --nj "$nj"
}

stage1() {
  local s
  for s in train dev test; do
    steps/make_mfcc.sh --nj "$nj" --cmd "$train_cmd" --mfcc-config conf/mfcc_hires.conf --force "$force" \
      "data/$s" "exp/make_mfcc/$s" mfcc
    steps/compute_cmvn_stats.sh --force "$force" "data/$s" "exp/make_mfcc/$s" mfcc
    utils/validate_data_dir.sh "data/$s"
  done
}

stage2() {
  local s l
  # The language subsets keep the per-speaker CMVN stats of the whole set (a
  # speaker reads every language): every system normalises a test utterance
  # alike, so subset_data_dir.sh's stale-stats warning is expected here.
  # One unit inventory for all languages (the shared IPA phones); phones of
  # dev/test that training lacks are added (and can never be recognised).
  utils/prepare_units.sh --allow-new true data/train/text data/dev/text data/test/text data/lang_ctc
  for l in "${langs[@]}"; do
    for s in train dev test; do
      awk -v l="$l" '$2 == l' "data/$s/utt2lang" > "data/$s/.utts_$l"
      utils/subset_data_dir.sh --utt-list "data/$s/.utts_$l" "data/$s" "data/${s}_$l"
      rm -f "data/$s/.utts_$l"
    done
    steps/train_lm.sh --order "$lm_order" --dev-text "data/dev_$l/text" "data/train_$l/text" "data/local/lm_$l"
  done
}

# train_system SYSTEM SEED: train exp/ctc_<system>_s<seed> (mono: one per language)
train_system() {
  local sys=$1 seed=$2 l
  local common=(--cmd "$cuda_cmd" --device "$device" --force "$force" --nnet-config "$nnet_config"
                "${nnet_sets[@]}" --set "train.seed=$seed")
  local mtl=(--set "train.init=exp/ctc_multi_s$seed/final.pt" --set "train.curriculum=[]"
             --set "train.max_epochs=$mtl_epochs")
  case "$sys" in
    mono)
      for l in "${langs[@]}"; do
        steps/nnet/train.sh "${common[@]}" --set "train.curriculum=[]" ${mono_epochs:+--set "train.max_epochs=$mono_epochs"} \
          "data/train_$l" data/lang_ctc "data/dev_$l" data/lang_ctc "exp/ctc_mono_${l}_s$seed"
      done ;;
    multi)
      steps/nnet/train.sh "${common[@]}" data/train data/lang_ctc data/dev data/lang_ctc "exp/ctc_multi_s$seed" ;;
    multi_cont)
      steps/nnet/train.sh "${common[@]}" "${mtl[@]}" data/train data/lang_ctc data/dev data/lang_ctc \
        "exp/ctc_multi_cont_s$seed" ;;
    multi_lr)
      steps/nnet/train.sh "${common[@]}" "${mtl[@]}" --task-config conf/tasks/lang.yaml \
        data/train data/lang_ctc data/dev data/lang_ctc "exp/ctc_multi_lr_s$seed" ;;
    multi_sr)
      steps/nnet/train.sh "${common[@]}" "${mtl[@]}" --task-config conf/tasks/spk.yaml \
        data/train data/lang_ctc data/dev data/lang_ctc "exp/ctc_multi_sr_s$seed" ;;
    multi_lr_sr)
      steps/nnet/train.sh "${common[@]}" "${mtl[@]}" --task-config "conf/tasks/lang.yaml conf/tasks/spk.yaml" \
        --set tasks.lang.weight=10 --set tasks.spk.weight=2.5 \
        data/train data/lang_ctc data/dev data/lang_ctc "exp/ctc_multi_lr_sr_s$seed" ;;
  esac
}

stage3() {
  local seed sys first
  for seed in $seeds; do
    # the multi-task systems start from the pre-trained multilingual model,
    # trained first (once: with --stage, a second call would retrain it)
    first=
    case " $systems " in *" multi_"*) train_system multi "$seed"; first=multi ;; esac
    jobs_init "$system_jobs"   # the others: --system-jobs at once
    for sys in $systems; do
      [ "$sys" = "$first" ] || jobs_run "${sys}_s$seed" train_system "$sys" "$seed"
    done
    jobs_wait
  done
}

# decode_lang NNET-DIR LANG: PER of one language's dev and test sets (LM weight chosen on dev)
decode_lang() {
  local nnet=$1 l=$2 s
  for s in dev test; do
    steps/nnet/compute_ctc_logprobs.sh --nj "$nj" --cmd "$decode_cmd" --force "$force" \
      "$nnet" "data/${s}_$l" "$nnet/logprobs_${s}_$l"
    # The language's phone LM lacks the other languages' phones: KenLM scores
    # them as <unk>, so at LM weight > 0 they are all but excluded.
    steps/decode_ctc.sh --nj "$nj" --cmd "$decode_cmd" --force "$force" --lm "data/local/lm_$l/lm.arpa" \
      --allow-missing-units true \
      --lm-weights "$lm_weights" --beam "$beam" \
      "$nnet/logprobs_${s}_$l" "data/${s}_$l" "$nnet/decode_${s}_$l"
  done
  steps/score.sh --metric per "data/dev_$l" "$nnet/decode_dev_$l"
  steps/score.sh --metric per --lmwt-from "$nnet/decode_dev_$l" "data/test_$l" "$nnet/decode_test_$l"
}

stage4() {
  local seed sys l s nnet
  for l in "${langs[@]}"; do     # once, before the jobs that read the splits
    for s in dev test; do utils/split_data.sh "data/${s}_$l" "$nj"; done
  done
  jobs_init "$system_jobs"
  for seed in $seeds; do
    for sys in $systems; do
      for l in "${langs[@]}"; do
        nnet=exp/ctc_${sys}_s$seed
        [ "$sys" != mono ] || nnet=exp/ctc_mono_${l}_s$seed
        jobs_run "${sys}_s${seed}_$l" decode_lang "$nnet" "$l"
      done
    done
  done
  jobs_wait
}

stage5() {
  local seed sys dirs models=()
  mkdir -p exp/results
  python3 local/make_table3.py --languages "$languages" --systems "$systems" --seeds "$seeds" \
    --out exp/results/table3.md exp
  cat exp/results/table3.md
  # Fig. 4: the conv front end's utterance means of the multilingual systems
  # on the test set, by language and by speaker: the PCA of the first seed's
  # models, the Fisher ratios mean +- std over the seeds
  for sys in multi multi_lr multi_sr multi_lr_sr; do
    dirs=
    for seed in $seeds; do dirs+="${dirs:+,}exp/ctc_${sys}_s$seed"; done
    case " $systems " in *" $sys "*) models+=("$sys=$dirs") ;; esac
  done
  if [ "${#models[@]}" -gt 0 ]; then
    python3 local/plot_fig4.py exp/results/fig4.png data/test "${models[@]}" > exp/log/fig4.log 2>&1 ||
      die_log exp/log/fig4.log "Fig. 4 failed"
    log "wrote exp/results/fig4.png (Fisher ratios: exp/results/fig4.tsv)"
  fi
}

run_stage 0 "corpus synthesis (espeak-ng)" stage0
run_stage 1 "MFCC + CMVN" stage1
run_stage 2 "units, language subsets, phone LMs" stage2
run_stage 3 "training" stage3
run_stage 4 "decoding + PER" stage4
run_stage 5 "table, Fig. 4" stage5
log "done"
