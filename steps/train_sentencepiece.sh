#!/usr/bin/env bash
# Train sentencepiece subword units (BPE or unigram) on the transcripts of a
# Kaldi text file (utterance ids stripped), as the output units of a CTC
# model. Writes <dir>/sp.model, sp.vocab, units.txt ('<piece> <id>', <blk> = 0,
# <unk> = 1), text (the transcripts as pieces, e.g. for a piece n-gram LM with
# steps/train_lm.sh), lexicon.txt (each word's pieces) and log/train.log.
# Single-threaded and seeded: a rerun on the same text gives the same bytes.
# <dir>/.sentencepiece.record says what it was made from; a rerun skips
# while it matches.
set -euo pipefail

model_type=unigram         # bpe | unigram
vocab_size=300             # units, <blk> and <unk> included
seed=1                     # sentencepiece's random generator
character_coverage=1.0     # share of the characters kept (the rest become <unk>)
help_message="Usage: $0 [options] <text> <dir>
e.g.: $0 --model-type bpe --vocab-size 500 data/train/text exp/sp_bpe500"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
text=$1 dir=$2

require_files "$text"
case $model_type in bpe|unigram) ;; *) die "--model-type must be bpe or unigram, got '$model_type'" ;; esac
if ! [[ $vocab_size =~ ^[0-9]+$ ]] || [ "$vocab_size" -lt 3 ]; then
  die "--vocab-size must be an integer >= 3, got '$vocab_size'"
fi
options="model_type=$model_type vocab_size=$vocab_size seed=$seed character_coverage=$character_coverage"
record=$(step_record "$options" "$text")
if [ -s "$dir/sp.model" ] && [ -s "$dir/units.txt" ] && step_fresh "$dir" sentencepiece "$record"; then
  log "$dir is up to date; skipping ($(wc -l < "$dir/units.txt") units)"
  exit 0
fi
mkdir -p "$dir/log"
rm -f "$dir/.sentencepiece.record"
log "training a $model_type sentencepiece model of $vocab_size units on $text"
python3 -m mtlasr.bin.train_sentencepiece --model-type "$model_type" --vocab-size "$vocab_size" \
  --seed "$seed" --character-coverage "$character_coverage" "$text" "$dir" > "$dir/log/train.log" 2>&1 ||
  die_log "$dir/log/train.log" "sentencepiece training failed"
step_done "$dir" sentencepiece "$record"
log "$(sed -n 's/.* INFO //p' "$dir/log/train.log" | tail -n 1)"
