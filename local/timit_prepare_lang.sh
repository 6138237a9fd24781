#!/usr/bin/env bash
# TIMIT dict, lang and phone bigram LM: the words are the 48 phones.
# Writes data/local/dict, data/lang, data/local/lm/phone_bg.arpa and
# data/lang_test_bg (data/lang + G.fst).
set -euo pipefail

phone_map=conf/phones.60-48-39.map
lm_order=2
num_states=3
help_message="Usage: $0 [options] <train-data-dir> <data-root>
e.g.: $0 data/train data"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
train=$1
data=$2
require_files "$phone_map" "$train/text"

dict=$data/local/dict
mkdir -p "$dict" "$data/local/lm"
# The 48 training phones: column 2 of the map (q, with one column, has none).
awk 'NF >= 2 { print $2 }' "$phone_map" | sort -u > "$dict/phones.tmp"
grep -qx sil "$dict/phones.tmp" || die "$phone_map: no 'sil' phone in column 2"
echo sil > "$dict/silence_phones.txt"
echo sil > "$dict/optional_silence.txt"
grep -vx sil "$dict/phones.tmp" > "$dict/nonsilence_phones.txt"
awk '{ print $1, $1 }' "$dict/phones.tmp" > "$dict/lexicon.txt"
rm -f "$dict/phones.tmp"
# Every phone in the training text must be in the lexicon.
cut -d' ' -f2- "$train/text" | tr ' ' '\n' | sed '/^$/d' | sort -u |
  comm -23 - <(cut -d' ' -f1 "$dict/lexicon.txt" | sort -u) > "$dict/oov.txt"
[ -s "$dict/oov.txt" ] && die "$train/text uses phones outside the lexicon: $(tr '\n' ' ' < "$dict/oov.txt")"

python3 -m mtlasr.bin.prepare_lang --num-states "$num_states" --num-sil-states "$num_states" "$dict" "$data/lang"

lm=$data/local/lm/phone_bg.arpa
cut -d' ' -f2- "$train/text" > "$data/local/lm/train.txt"
kaldingram train --ngram-order "$lm_order" --text "$data/local/lm/train.txt" --lm "$lm.tmp" \
  > "$data/local/lm/train_lm.log" 2>&1 || die "LM training failed; see $data/local/lm/train_lm.log"
atomic_mv "$lm.tmp" "$lm"

rm -rf "$data/lang_test_bg.tmp"
cp -r "$data/lang" "$data/lang_test_bg.tmp"
python3 -m mtlasr.bin.arpa_to_g "$lm" "$data/lang_test_bg.tmp/words.txt" "$data/lang_test_bg.tmp/G.fst"
rm -rf "$data/lang_test_bg"
mv "$data/lang_test_bg.tmp" "$data/lang_test_bg"
log "lang: $(grep -c . "$dict/lexicon.txt") phones; bigram LM $lm; G.fst in $data/lang_test_bg"
