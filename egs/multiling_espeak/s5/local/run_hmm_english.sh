#!/usr/bin/env bash
# Seed 000's LSTM-HMM and its monophone GMM on one language of the espeak
# corpus (issue 10): the TIMIT recipe's stages 1-3 and 5-7 (egs/timit/s5),
# through the same steps/ and utils/, on data/{train,dev,test}_<lang> that
# run.sh's stage 2 makes. Those dirs hold the 40-dim CTC features, which are
# neither used nor touched here: the data dirs are copied to
# data/hmm_<lang>/{train,dev,test} and get 13-dim MFCCs (conf/mfcc.conf, as
# TIMIT) in mfcc_hmm/ and per-speaker CMVN.
#
# Dict: every phone of the training transcripts is a word pronounced as
# itself (as local/timit_prepare_dict.sh for TIMIT). Unlike TIMIT, the
# espeak transcripts have no silence token while the audio has leading and
# trailing silence and pauses at punctuation, so `sil` is an optional
# silence between words (--sil-prob, Kaldi's 0.5 by default) and never a
# word of the hypotheses or the references; it is not scored. Phone bigram
# LM on the training text (perplexity on dev), G, HCLG; monophone GMM,
# alignments of train and dev; LSTM-HMM on the GMM alignments (frame CE,
# conf/lstm_hmm.yaml); decoding of dev and test with both, every LM weight
# of steps/decode.sh; PER with the LM weight chosen on dev; the table in
# exp/hmm_<lang>/results.md.
#
# Outputs: data/hmm_<lang>/, exp/hmm_<lang>/{mono,mono_ali,mono_ali_dev,lstm,
# make_mfcc,log}, mfcc_hmm/. A rerun skips every finished step (their
# records); --force true redoes them.
set -euo pipefail

lang=en                        # corpus language: data/{train,dev,test}_<lang>
nj=1                           # parallel jobs of every step
nnet_config=conf/lstm_hmm.yaml # LSTM-HMM config (YAML)
nnet_opts=                     # config overrides, e.g. "train.max_epochs=4 model.cell_dim=256"
seed=                          # training seed (default: the config's)
sil_prob=0.5                   # optional silence between phones (the transcripts have no silence)
lm_order=2                     # phone n-gram of the decoding graph (TIMIT: bigram)
force=false                    # redo every step even if up to date
stage=1
stop_stage=6
help_message="Usage: $0 [options]
e.g.: $0                                        # English: GMM and LSTM-HMM, exp/hmm_en/results.md
      $0 --lang de --nj 2
      $0 --stage 4 --nnet-opts 'train.max_epochs=6' --force true   # retrain and rescore the LSTM
Run from egs/multiling_espeak/s5 after run.sh's stage 2 (data/{train,dev,test}_<lang>).
Stages: 1 data dirs, MFCC + CMVN; 2 dict, lang, phone LM, G; 3 monophone GMM,
        alignments, graph, GMM decoding; 4 LSTM-HMM training; 5 LSTM decoding;
        6 PER scoring and exp/hmm_<lang>/results.md."

[ -f ./path.sh ] && . ./path.sh
[ -f ./cmd.sh ] && . ./cmd.sh
train_cmd=${train_cmd:-utils/run_local.sh}
decode_cmd=${decode_cmd:-utils/run_local.sh}
cuda_cmd=${cuda_cmd:-utils/run_local.sh}
. utils/lib.sh
printf -v command_line '%q ' "$0" "$@"   # for results.md (not an option)
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

[[ $lang =~ ^[a-z]+$ ]] || die "--lang must be a language code such as en, got '$lang'"
[[ $nj =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
[[ $stage =~ ^[1-6]$ ]] || die "--stage must be a stage number, 1 to 6 (see --help), got '$stage'"
[[ $stop_stage =~ ^[1-6]$ ]] || die "--stop-stage must be a stage number, 1 to 6 (see --help), got '$stop_stage'"
[ "$stop_stage" -ge "$stage" ] || die "--stop-stage $stop_stage is before --stage $stage: nothing to do"
[ -z "$seed" ] || [[ $seed =~ ^[0-9]+$ ]] || die "--seed must be a number, got '$seed'"
require_files "$nnet_config" conf/mfcc.conf
for s in train dev test; do
  require_files "data/${s}_$lang/wav.scp" "data/${s}_$lang/text" "data/${s}_$lang/utt2spk"
done
[ -z "$seed" ] || nnet_opts="$nnet_opts train.seed=$seed"
nnet_sets=()
for o in $nnet_opts; do nnet_sets+=(--set "$o"); done

data=data/hmm_$lang
exp=exp/hmm_$lang
# One run at a time in this system's own dirs (not in data/ and exp/, which
# run.sh holds while it runs); stopping this script stops its jobs.
lock_dir "$exp"
lock_dir "$data"
trap _recipe_on_stop INT TERM
mkdir -p "$exp/log"
decode_opts=(--nj "$nj" --cmd "$decode_cmd" --force "$force")
start_all=$(date +%s)

# The network config is checked before any stage runs.
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  python3 -m mtlasr.bin.train_nnet --check-config --config "$nnet_config" "${nnet_sets[@]}" \
    "$data/train" "$exp/mono_ali" "$exp/lstm" > "$exp/log/check_config.log" 2>&1 ||
    die_log "$exp/log/check_config.log" "the network configuration is not usable"
fi

# copy_data SRC DEST: DEST = SRC without its features (feats.scp, cmvn.scp,
# utt2num_frames), unless DEST already has SRC's tables byte for byte.
copy_data() {
  local src=$1 dest=$2 f same=true
  if [ "$force" = false ] && [ -f "$dest/utt2spk" ]; then
    for f in "$src"/*; do
      f=$(basename "$f")
      case $f in feats.scp|cmvn.scp|utt2num_frames) continue ;; esac
      [ -f "$src/$f" ] || continue
      cmp -s "$src/$f" "$dest/$f" || { same=false; break; }
    done
    if $same; then log "$dest: up to date with $src"; return 0; fi
  fi
  utils/copy_data_dir.sh "$src" "$dest"
  rm -f "$dest/feats.scp" "$dest/cmvn.scp" "$dest/utt2num_frames"
}

stage1() {
  local s
  for s in train dev test; do
    copy_data "data/${s}_$lang" "$data/$s"
    steps/make_mfcc.sh --nj "$nj" --cmd "$train_cmd" --mfcc-config conf/mfcc.conf --force "$force" \
      "$data/$s" "$exp/make_mfcc/$s" mfcc_hmm
    steps/compute_cmvn_stats.sh --force "$force" "$data/$s" "$exp/make_mfcc/$s" mfcc_hmm
    utils/validate_data_dir.sh "$data/$s"
  done
}

stage2() {
  local dict=$data/local/dict tmp
  mkdir -p "$data/local"
  tmp=$(mktemp -d "$data/local/.dict.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # Every phone of the training transcripts is a word pronounced as itself;
  # sil is the (optional) silence, and !SIL its word (the OOV word, unused:
  # dev and test have no phone outside the training ones, checked below).
  cut -d' ' -f2- "$data/train/text" | tr ' ' '\n' | sed '/^$/d' | sort -u > "$tmp/nonsilence_phones.txt"
  if grep -qx sil "$tmp/nonsilence_phones.txt"; then die "$data/train/text has a phone named sil"; fi
  echo sil > "$tmp/silence_phones.txt"
  echo sil > "$tmp/optional_silence.txt"
  { echo '!SIL sil'; awk '{ print $1, $1 }' "$tmp/nonsilence_phones.txt"; } > "$tmp/lexicon.txt"
  local s oov
  for s in dev test; do
    oov=$(cut -d' ' -f2- "$data/$s/text" | tr ' ' '\n' | sed '/^$/d' | sort -u |
          comm -23 - "$tmp/nonsilence_phones.txt" | tr '\n' ' ')
    [ -z "$oov" ] || log "WARNING: $data/$s/text has phones that training lacks (never recognised): $oov"
  done
  chmod "$(printf '%o' $((0777 & ~0$(umask))))" "$tmp"  # mktemp -d made it private
  replace_dir "$tmp" "$dict"   # an identical dict leaves $dict (and what is made from it) untouched
  trap - EXIT
  log "$dict: $(wc -l < "$dict/nonsilence_phones.txt") phones + sil"
  utils/prepare_lang.sh --sil-prob "$sil_prob" --num-sil-states 3 --num-nonsil-states 3 \
    "$dict" '!SIL' "$data/local/lang_tmp" "$data/lang"
  steps/train_lm.sh --order "$lm_order" --dev-text "$data/dev/text" "$data/train/text" "$data/local/lm"
  utils/format_lm.sh "$data/lang" "$data/local/lm/lm.arpa" "$data/lang_test"
}

stage3() {
  local s
  steps/train_mono.sh --cmd "$train_cmd" --force "$force" "$data/train" "$data/lang" "$exp/mono"
  steps/align_si.sh --nj "$nj" --cmd "$train_cmd" --force "$force" "$data/train" "$data/lang" "$exp/mono" "$exp/mono_ali"
  steps/align_si.sh --nj "$nj" --cmd "$train_cmd" --force "$force" "$data/dev" "$data/lang" "$exp/mono" "$exp/mono_ali_dev"
  steps/mkgraph.sh --force "$force" "$data/lang_test" "$exp/mono" "$exp/mono/graph"
  for s in dev test; do
    steps/decode.sh "${decode_opts[@]}" "$exp/mono/graph" "$data/$s" "$exp/mono/decode_$s"
  done
}

stage4() {
  steps/nnet/train.sh --cmd "$cuda_cmd" --nnet-config "$nnet_config" --force "$force" "${nnet_sets[@]}" \
    "$data/train" "$exp/mono_ali" "$data/dev" "$exp/mono_ali_dev" "$exp/lstm"
}

stage5() {
  local s
  for s in dev test; do
    steps/decode.sh "${decode_opts[@]}" "$exp/mono/graph" "$data/$s" "$exp/lstm/decode_$s"
  done
}

# per_cell DECODE-DIR: "PER (S/D/I of N)" from its per file (steps/score.sh).
per_cell() {
  sed -E -n 's/^%PER ([0-9.]+) \[ [0-9]+ \/ ([0-9]+), ([0-9]+) ins, ([0-9]+) del, ([0-9]+) sub \].*/\1 (\5\/\4\/\3 of \2)/p' "$1/per"
}

stage6() {
  local sys s out=$exp/results.md
  for sys in mono lstm; do
    steps/score.sh --metric per "$data/dev" "$exp/$sys/decode_dev"
    steps/score.sh --metric per --lmwt-from "$exp/$sys/decode_dev" "$data/test" "$exp/$sys/decode_test"
  done
  local pdfs gauss lstm_desc lstm_speed
  pdfs=$(grep -o '[0-9]* pdfs' "$exp/mono/log/train.log" | tail -n 1 || true)
  gauss=$(grep -o '[0-9]* Gaussians' "$exp/mono/log/train.log" | tail -n 1 || true)
  lstm_desc=$(python3 - "$exp/lstm" <<'EOF'
import json, sys, yaml
from pathlib import Path
d = Path(sys.argv[1])
cfg = yaml.safe_load((d / "config.yaml").read_text()) if (d / "config.yaml").exists() else None
h = json.loads((d / "history.json").read_text())
best = min(h, key=lambda r: r.get("valid_loss", 0))
m = cfg["model"] if cfg else {}
c = cfg["chunk"] if cfg else {}
print(f"{m.get('num_layers')} x {m.get('cell_dim')} cells, proj {m.get('proj_dim')}, "
      f"chunk {c.get('chunk')}+{c.get('left')} left, delay {c.get('delay')}; "
      f"final.pt = epoch {best['epoch']} of {len(h)}, valid frame acc {100 * best['valid_acc']:.1f}%")
print(f"{sum(r['frames_per_second'] for r in h) / len(h):.0f} frames/s, "
      f"{sum(r['seconds'] for r in h) / len(h):.0f} s/epoch")
EOF
)
  lstm_speed=$(sed -n 2p <<< "$lstm_desc")
  lstm_desc=$(sed -n 1p <<< "$lstm_desc")
  {
    echo "# GMM vs LSTM-HMM on the espeak corpus, language $lang"
    echo
    echo "Phone error rate (%), LM weight chosen on dev (steps/decode.sh's range) and applied to test."
    echo "Phone $lm_order-gram LM on the training transcripts, dev perplexity" \
         "$(sed -n 's/^ppl=\([^ ]*\) .*/\1/p' "$data/local/lm/ppl_dev"); optional silence (sil-prob $sil_prob), not scored."
    echo
    echo "| set | utterances | hours | speakers |"
    echo "|---|---|---|---|"
    for s in train dev test; do
      awk -v s="$s" -v n="$(wc -l < "$data/$s/spk2utt")" \
        '{ t += $2 } END { printf "| %s | %d | %.3f | %d |\n", s, NR, t / 3600, n }' "$data/$s/utt2dur"
    done
    echo
    echo "| system | dev PER % (S/D/I of N) | test PER % (S/D/I of N) | LM weight | details |"
    echo "|---|---|---|---|---|"
    echo "| monophone GMM-HMM | $(per_cell "$exp/mono/decode_dev") | $(per_cell "$exp/mono/decode_test") |" \
         "$(cat "$exp/mono/decode_dev/lmwt") | $pdfs, $gauss; $(sed -n 's/^--num-ceps=//p' conf/mfcc.conf)-dim MFCC," \
         "delta order $(cat "$exp/mono/delta_order"), CMVN \`$(cat "$exp/mono/cmvn_opts")\` |"
    echo "| LSTM-HMM | $(per_cell "$exp/lstm/decode_dev") | $(per_cell "$exp/lstm/decode_test") |" \
         "$(cat "$exp/lstm/decode_dev/lmwt") | \`$nnet_config\`${nnet_opts:+ +$nnet_opts}: $lstm_desc; $lstm_speed |"
    echo
    echo "Command (in egs/multiling_espeak/s5): \`${command_line% }\`"
    echo
    echo "Machine: $(getconf _NPROCESSORS_ONLN) CPU cores, training device $(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")') (auto);" \
         "OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}; step times in $exp/log/stage_times.log; $(date '+%Y-%m-%d')."
  } > "$out.tmp"
  # replaced only when it changed (an up-to-date rerun then leaves no stage time)
  if cmp -s "$out.tmp" "$out"; then rm -f "$out.tmp"; else atomic_mv "$out.tmp" "$out"; fi
  cat "$out"
}

# run_stage (utils/lib.sh) times each stage in $exp/log/stage_times.log,
# watching only this script's dirs (run.sh holds exp/log).
stage_times=$exp/log/stage_times.log
stage_watch="$data $exp mfcc_hmm"
run_stage 1 "data dirs, 13-dim MFCC, CMVN" stage1
run_stage 2 "dict, lang, phone LM, G" stage2
run_stage 3 "monophone GMM, alignments, graph, GMM decoding" stage3
run_stage 4 "LSTM-HMM training" stage4
run_stage 5 "LSTM-HMM decoding" stage5
run_stage 6 "PER scoring and results" stage6
log "done in $(( $(date +%s) - start_all )) s (step times: $exp/log/stage_times.log)"
