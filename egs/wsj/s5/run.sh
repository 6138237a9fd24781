#!/usr/bin/env bash
# Letter-based end-to-end CTC recogniser with a speaker branch, multi-task
# (MT) or adversarial (AL, gradient reversal), forked at IN / MID / OUT
# layers of a gated ConvNet, and a semi-supervised variant that adds
# speaker-labelled utterances without transcripts (seed 002, Adi et al.,
# Table 1 and Fig. 2). On the LDC WSJ corpus (--wsj0/--wsj1: si284, dev93,
# eval92) or, without it, on a demo corpus of English synthesised here with
# espeak-ng from the Debian fortunes (the multilingual recipe's corpus
# script, $MTL_ROOT/egs/multiling_espeak/s5/local; its unused sentences are
# the word-LM text).
# Stages: 0 data, 1 features (40-dim MFCC + CMVN), 2 letters, lexicon and
# word 4-gram LM, 3 training (staged: CTC pre-training, then the speaker
# branch alone, then jointly), 4 decoding (greedy: LER; lexicon + word LM:
# WER, LM weight and word score chosen on dev), 5 speaker probes per layer
# (Fig. 2), 6 the table (Table 1) in exp/results/table1.md.
#
# A rerun skips finished work and resumes unfinished work. Naming a stage
# (--stage N) redoes stages N..stop-stage from scratch.
set -euo pipefail

stage=
stop_stage=6
wsj0=                        # LDC93S6B copy (with --wsj1: the real corpus; none: the espeak-ng demo)
wsj1=                        # LDC94S13B copy
lm_text=                     # word-LM text, one sentence per line (LDC default: the si284 transcripts)
extra_data=                  # LDC: speaker-labelled data dir for the semi-supervised rows (seed 002: Librispeech)
hours=2.0                    # demo: hours of English speech to synthesise
num_speakers=24              # demo: speakers (3 dev, 3 test)
extra_speakers=6             # demo: training speakers whose transcripts are withheld (semi-supervised rows)
corpus_seed=0
nj=4
nnet_config=conf/ctc_glu.yaml
nnet_opts=
forks="2 4 7"                # the IN, MID and OUT layers (seed 002: 2, 8, 15 of 17)
aux_epochs=1                 # staged training: epochs of the speaker branch alone ...
joint_epochs=3               # ... then of everything (the baseline gets as many, without a branch)
systems="base mt_in mt_mid mt_out al_in al_mid al_out semi_in semi_mid semi_out"
seeds=0                      # training seeds, e.g. "0 1 2" (mean +- std in the table)
system_jobs=1                # systems trained or decoded at once (each: train.num_threads threads or --nj jobs)
lm_order=4
lm_weights="0.5 1 1.5 2 3"   # LM weights tried on dev (word decoding)
word_scores="0 1 2"          # word insertion scores tried on dev
beam=50
probe_seeds="0 1 2"
probe_data=                  # speakers to probe (default: data/train_extra if there is one, else the test set)
probe_held_out=20            # utterances per speaker the probe is tested on
device=auto
help_message="Usage: $0 [options]
e.g.: $0                                              # the espeak-ng demo (about 2 h of English)
      $0 --wsj0 /corpora/LDC93S6B --wsj1 /corpora/LDC94S13B --lm-text /corpora/wsj_lm.txt
      $0 --config conf/tiny.conf                      # a few minutes of speech (tests)
      $0 --stage 3 --seeds '0 1 2'                    # retrain every system with 3 seeds
      $0 --nj 1 --system-jobs 2 --nnet-opts train.num_threads=1   # two systems at a time on 2 cores
Systems (exp/ctc_<system>_s<seed>; all but base start from exp/ctc_pre_s<seed>):
  base        CTC only, trained --joint-epochs more than the pre-training (Baseline)
  mt_<fork>   speaker branch at IN / MID / OUT, multi-task (static lambda 0.5)     (Mult.)
  al_<fork>   speaker branch behind a gradient reversal layer (lambda ramp to 0.2) (Adv.)
  semi_<fork> al_<fork> + speaker-labelled utterances without transcripts         (Semi.)
Stages: 0 data, 1 features, 2 letters + lexicon + LM, 3 training, 4 decoding, 5 probes, 6 table.
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
[ -f "$nnet_config" ] || die "--nnet-config $nnet_config: no such file"
if [ -n "$wsj0$wsj1" ]; then
  if [ -z "$wsj0" ] || [ -z "$wsj1" ]; then die "--wsj0 and --wsj1 go together (WSJ0 and WSJ1 discs)"; fi
  train=train_si284 dev=test_dev93 test=test_eval92
else
  train=train dev=dev test=test
fi
read -r -a fork_layers <<< "$forks"
[ "${#fork_layers[@]}" -eq 3 ] || die "--forks: give the IN, MID and OUT layers, e.g. '2 4 7'; got '$forks'"
declare -A fork_of=([in]=${fork_layers[0]} [mid]=${fork_layers[1]} [out]=${fork_layers[2]})
for s in $systems; do
  case "$s" in base|mt_in|mt_mid|mt_out|al_in|al_mid|al_out|semi_in|semi_mid|semi_out) ;;
    *) die "--systems: unknown system '$s' (see --help)" ;; esac
done
for s in $seeds; do [[ "$s" =~ ^[0-9]+$ ]] || die "--seeds: '$s' is not a seed number"; done
[[ $system_jobs =~ ^[1-9][0-9]*$ ]] || die "--system-jobs must be a positive integer, got '$system_jobs'"
[[ $aux_epochs =~ ^[1-9][0-9]*$ && $joint_epochs =~ ^[1-9][0-9]*$ ]] ||
  die "--aux-epochs and --joint-epochs must be positive integers"
nnet_sets=()
for o in $nnet_opts; do nnet_sets+=(--set "$o"); done

recipe_begin   # utils/lib.sh: lock exp/ and data/, stop the jobs on Ctrl-C

# The network config and the branch configs are checked (fork layers
# included) before any stage runs.
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  for t in "" conf/tasks/mt/spk.yaml conf/tasks/al/spk.yaml; do
    for f in "${fork_layers[@]}"; do
      python3 -m mtlasr.bin.train_nnet --check-config --config "$nnet_config" ${t:+--config "$t"} \
        "${nnet_sets[@]}" ${t:+--set "tasks.spk.fork=$f"} data/train data/lang_char exp/check \
        > exp/log/check_config.log 2>&1 || die_log exp/log/check_config.log "the network configuration is not usable"
      [ -n "$t" ] || break
    done
  done
fi

stage0() {
  if [ -n "$wsj0" ]; then
    python3 local/wsj_data_prep.py --wsj0 "$wsj0" --wsj1 "$wsj1" --nj "$nj" --punctuation words \
      --decode-to data/local/wsj_wav data
    [ -n "$lm_text" ] || { mkdir -p data/local; cut -d' ' -f2- "data/$train/text" > data/local/lm_text; }
    if [ -n "$extra_data" ]; then
      utils/copy_data_dir.sh "$extra_data" data/train_extra
      rm -f data/train_extra/text
    fi
    return 0
  fi
  # The demo: English from the multilingual recipe's synthesiser; its text is
  # the words (text.words), letters are made from them.
  python3 "$MTL_ROOT/egs/multiling_espeak/s5/local/make_espeak_corpus.py" --out-dir data/local/espeak \
    --data-dir data/local/espeak_dirs --languages en --hours "$hours" --num-speakers "$num_speakers" \
    --dev-speakers 3 --test-speakers 3 --seed "$corpus_seed" --nj "$nj"
  local s
  for s in dev test; do
    utils/copy_data_dir.sh "data/local/espeak_dirs/$s" "data/$s"
    cp "data/local/espeak_dirs/$s/text.words" "data/$s/text"
  done
  utils/copy_data_dir.sh data/local/espeak_dirs/train data/local/train_all
  cp data/local/espeak_dirs/train/text.words data/local/train_all/text
  if [ "$extra_speakers" -eq 0 ]; then
    utils/copy_data_dir.sh data/local/train_all data/train
  else
    # The last --extra-speakers training speakers lose their transcripts:
    # data/train_extra (speaker labels only, the semi-supervised rows).
    cut -d' ' -f1 data/local/train_all/spk2utt | tail -n "$extra_speakers" > data/local/extra_spk
    cut -d' ' -f1 data/local/train_all/spk2utt | head -n "-$extra_speakers" > data/local/transcribed_spk
    [ -s data/local/transcribed_spk ] || die "--extra-speakers $extra_speakers leaves no transcribed speaker"
    utils/subset_data_dir.sh --spk-list data/local/transcribed_spk data/local/train_all data/train
    utils/subset_data_dir.sh --spk-list data/local/extra_spk data/local/train_all data/train_extra
    rm -f data/train_extra/text data/train_extra/text.words
  fi
  mkdir -p data/local
  cp data/local/espeak/lm_text.en data/local/lm_text
}

stage1() {
  local s sets=("$train" "$dev" "$test")
  [ -d data/train_extra ] && sets+=(train_extra)
  for s in "${sets[@]}"; do
    steps/make_mfcc.sh --nj "$nj" --cmd "$train_cmd" --mfcc-config conf/mfcc_hires.conf --force "$force" \
      "data/$s" "exp/make_mfcc/$s" mfcc
    steps/compute_cmvn_stats.sh --force "$force" "data/$s" "exp/make_mfcc/$s" mfcc
    utils/validate_data_dir.sh --no-text "data/$s"
  done
}

stage2() {
  local text=${lm_text:-data/local/lm_text}
  # Letters of the training transcripts (dev/test letters they lack are
  # added: they can never be recognised); the lexicon spells every word
  # of the LM text.
  utils/prepare_units.sh --unit-type letter --allow-new true --lexicon-text "$text" \
    "data/$train/text" "data/$dev/text" "data/$test/text" data/lang_char
  mkdir -p data/local/lm
  awk '{ printf "lm%08d %s\n", NR, $0 }' "$text" > data/local/lm/text
  steps/train_lm.sh --order "$lm_order" --dev-text "data/$dev/text" data/local/lm/text data/local/lm_word
}

# train_system SYSTEM SEED: exp/ctc_<system>_s<seed>, from exp/ctc_pre_s<seed>
train_system() {
  local sys=$1 seed=$2 kind fork
  local common=(--cmd "$cuda_cmd" --device "$device" --force "$force" --nnet-config "$nnet_config"
                "${nnet_sets[@]}" --set "train.seed=$seed")
  local from=(--set "train.init=exp/ctc_pre_s$seed/final.pt")
  local train_dirs=("data/$train" data/lang_char "data/$dev" data/lang_char "exp/ctc_${sys}_s$seed")
  if [ "$sys" = base ]; then
    steps/nnet/train.sh "${common[@]}" "${from[@]}" --set "train.max_epochs=$joint_epochs" "${train_dirs[@]}"
    return
  fi
  kind=${sys%_*} fork=${fork_of[${sys#*_}]}
  local task=conf/tasks/mt/spk.yaml extra=()
  [ "$kind" = mt ] || task=conf/tasks/al/spk.yaml
  if [ "$kind" = semi ]; then
    [ -d data/train_extra ] || die "$sys: no data/train_extra (demo: --extra-speakers > 0; LDC: --extra-data)"
    extra=(--extra-data data/train_extra)
  fi
  steps/nnet/train.sh "${common[@]}" "${from[@]}" "${extra[@]}" --task-config "$task" \
    --set "tasks.spk.fork=$fork" --set "train.max_epochs=$((aux_epochs + joint_epochs))" \
    --set "train.stages=[[aux,$aux_epochs],[joint,$joint_epochs]]" "${train_dirs[@]}"
}

stage3() {
  local seed sys
  for seed in $seeds; do
    steps/nnet/train.sh --cmd "$cuda_cmd" --device "$device" --force "$force" --nnet-config "$nnet_config" \
      "${nnet_sets[@]}" --set "train.seed=$seed" \
      "data/$train" data/lang_char "data/$dev" data/lang_char "exp/ctc_pre_s$seed"
    # every system of this seed starts from exp/ctc_pre_s<seed>: --system-jobs at once
    jobs_init "$system_jobs"
    for sys in $systems; do jobs_run "${sys}_s$seed" train_system "$sys" "$seed"; done
    jobs_wait
  done
}

# decode_system NNET-DIR: LER (greedy) and WER (lexicon + word LM) on dev and test
decode_system() {
  local nnet=$1 s
  for s in "$dev" "$test"; do
    steps/nnet/compute_ctc_logprobs.sh --nj "$nj" --cmd "$decode_cmd" --force "$force" \
      "$nnet" "data/$s" "$nnet/logprobs_$s"
    steps/decode_ctc.sh --nj "$nj" --cmd "$decode_cmd" --force "$force" --word-sep "<space>" \
      "$nnet/logprobs_$s" "data/$s" "$nnet/decode_greedy_$s"
    steps/decode_ctc.sh --nj "$nj" --cmd "$decode_cmd" --force "$force" --word-sep "<space>" \
      --lm data/local/lm_word/lm.arpa --lexicon data/lang_char/lexicon.txt \
      --lm-weights "$lm_weights" --word-scores "$word_scores" --beam "$beam" \
      "$nnet/logprobs_$s" "data/$s" "$nnet/decode_word_$s"
  done
  steps/score.sh --metric cer "data/$dev" "$nnet/decode_greedy_$dev"
  steps/score.sh --metric cer "data/$test" "$nnet/decode_greedy_$test"
  steps/score.sh --metric wer "data/$dev" "$nnet/decode_word_$dev"
  steps/score.sh --metric wer --lmwt-from "$nnet/decode_word_$dev" "data/$test" "$nnet/decode_word_$test"
}

stage4() {
  local seed sys
  utils/split_data.sh "data/$dev" "$nj"    # once, before the jobs that read the splits
  utils/split_data.sh "data/$test" "$nj"
  jobs_init "$system_jobs"
  for seed in $seeds; do
    for sys in $systems; do jobs_run "${sys}_s$seed" decode_system "exp/ctc_${sys}_s$seed"; done
  done
  jobs_wait
}

# Fig. 2: how well a probe identifies the speaker from each fork layer of the
# first seed's baseline, MT and AL models, on held-out utterances of
# speakers none of them was trained on: the speaker-only voices of the demo
# (only the semi-supervised systems saw them), else the test set.
# the speaker probe of every seed's models: each system's accuracy per layer
# is the mean over its seeds (each the mean over --probe-seeds), the spread
# the std over its seeds
probe_dir=exp/probe_spk_s${seeds// /_}
stage5() {
  local seed sys dirs models=() pdata=$probe_data
  for sys in base mt_in mt_mid mt_out al_in al_mid al_out; do
    dirs=
    for seed in $seeds; do dirs+="${dirs:+,}exp/ctc_${sys}_s$seed"; done
    case " $systems " in *" $sys "*) models+=("$sys=$dirs") ;; esac
  done
  [ "${#models[@]}" -gt 0 ] || { log "no baseline, MT or AL system: no probe"; return 0; }
  if [ -z "$pdata" ]; then
    pdata=data/$test
    [ -f data/train_extra/feats.scp ] && pdata=data/train_extra
  fi
  python3 -m mtlasr.bin.probe_layers --layers "input $forks" --seeds "$probe_seeds" --num-threads 1 \
    --held-out-per-speaker "$probe_held_out" "$probe_dir" "$pdata" "${models[@]}" \
    > "exp/log/$(basename "$probe_dir").log" 2>&1 || die_log "exp/log/$(basename "$probe_dir").log" "the speaker probe failed"
}

stage6() {
  mkdir -p exp/results
  python3 local/make_table1.py --systems "$systems" --seeds "$seeds" --dev "$dev" --test "$test" \
    --probe "$probe_dir" --out exp/results/table1.md exp
  cat exp/results/table1.md
}

run_stage 0 "data" stage0
run_stage 1 "MFCC + CMVN" stage1
run_stage 2 "letters, lexicon, word LM" stage2
run_stage 3 "training" stage3
run_stage 4 "decoding (greedy LER, word-LM WER)" stage4
run_stage 5 "speaker probes per layer" stage5
run_stage 6 "table" stage6
log "done"
