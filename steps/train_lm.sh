#!/usr/bin/env bash
# Train a Kneser-Ney n-gram LM (kaldingram) on the transcripts of a Kaldi
# text file. Writes <lm-dir>/lm.arpa, train.txt (the LM training text),
# ppl_dev (with --dev-text: ppl=.. ppl1=.. oov_rate=.. ..., see
# mtlasr.bin.lm_ppl), summary (one line: n-gram counts per order, dev
# perplexity and OOV rate) and logs in <lm-dir>/log/.
# --unit char: each word becomes its characters, words separated by
# --space-symbol; the dev text is treated the same way.
# --vocab FILE: units outside it are counted; with --oov-word W they are
# replaced by W before training (e.g. --vocab data/lang/words.txt --oov-word "<unk>").
# <lm-dir>/.lm.record says what the LM was made from (the texts, the options,
# the code); a rerun skips while it matches.
set -euo pipefail

order=3
unit=word                 # word | char
space_symbol="<space>"    # word separator of char LMs
dev_text=                 # Kaldi text file for the perplexity
vocab=                    # words.txt or word list; units outside it are OOV
oov_word=                 # replace OOV units by this (needs --vocab)
help_message="Usage: $0 [options] <text> <lm-dir>
e.g.: $0 --order 3 --dev-text data/dev/text data/train/text exp/lm_word3
      $0 --unit char --order 5 data/train/text exp/lm_char5"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
text=$1 dir=$2

require_files "$text"
case $unit in word|char) ;; *) die "--unit must be word or char, got '$unit'" ;; esac
[[ $order =~ ^[1-5]$ ]] || die "--order must be 1..5 (kaldingram), got '$order'"
[ -z "$oov_word" ] || [ -n "$vocab" ] || die "--oov-word needs --vocab (the known words)"
[ -z "$vocab" ] || require_files "$vocab"
[ -z "$dev_text" ] || require_files "$dev_text"

text_opts=(--unit "$unit" --space-symbol "$space_symbol")
[ -z "$vocab" ] || text_opts+=(--vocab "$vocab")
[ -z "$oov_word" ] || text_opts+=(--oov-word "$oov_word")
options="order=$order unit=$unit space_symbol=$space_symbol oov_word=$oov_word"
inputs=("$text")
[ -z "$dev_text" ] || inputs+=("$dev_text")
[ -z "$vocab" ] || inputs+=("$vocab")
record=$(step_record "$options" "${inputs[@]}")
if [ -s "$dir/lm.arpa" ] && [ -s "$dir/summary" ] && step_fresh "$dir" lm "$record"; then
  log "$dir is up to date; skipping ($(cat "$dir/summary"))"
  exit 0
fi
mkdir -p "$dir/log"
rm -f "$dir/.lm.record" "$dir/config"

log "LM text from $text ($unit units)"
python3 -m mtlasr.bin.lm_text "${text_opts[@]}" "$text" "$dir/train.txt" > "$dir/log/text.log" 2>&1 ||
  die_log "$dir/log/text.log" "preparing the LM text failed"
while read -r line; do log "$line"; done < <(sed -n 's/.* INFO //p' "$dir/log/text.log")
log "training an order-$order Kneser-Ney LM"
kaldingram train --ngram-order "$order" --text "$dir/train.txt" --lm "$dir/lm.arpa.tmp" \
  > "$dir/log/train.log" 2>&1 || die_log "$dir/log/train.log" "kaldingram train failed"
atomic_mv "$dir/lm.arpa.tmp" "$dir/lm.arpa"
# Kneser-Ney discounts are 1 for an order none of whose n-grams occurs twice:
# its probabilities then come out as 0 (log10 -99) and G is useless.
nzero=$(awk 'NF >= 2 && $1 + 0 <= -99 && $2 != "<s>"' "$dir/lm.arpa" | wc -l)
[ "$nzero" -eq 0 ] || log "WARNING: $nzero n-grams of $dir/lm.arpa have probability 0 (log10 -99):" \
  "the text is too small for order $order (no n-gram of some order occurs twice)"

counts=$(sed -n -E '/^\\1-grams:/q; s/^ngram ([0-9]+)=([0-9]+)$/\1-grams \2/p' "$dir/lm.arpa" | paste -sd';' | sed 's/;/, /g')
summary="$dir/lm.arpa: order $order $unit LM; $counts"
if [ -n "$dev_text" ]; then
  python3 -m mtlasr.bin.lm_ppl "${text_opts[@]}" "$dir/lm.arpa" "$dev_text" "$dir/ppl_dev" \
    > "$dir/log/ppl_dev.log" 2>&1 || die_log "$dir/log/ppl_dev.log" "perplexity on $dev_text failed"
  summary="$summary; dev $dev_text: $(cat "$dir/ppl_dev")"
fi
printf '%s\n' "$summary" > "$dir/summary.tmp"
atomic_mv "$dir/summary.tmp" "$dir/summary"
step_done "$dir" lm "$record"
log "$summary"
