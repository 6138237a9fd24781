#!/usr/bin/env bash
# TIMIT's dict dir for a phone recogniser: the words are the 48 training
# phones (column 2 of the 60-48-39 map), each pronounced as itself; sil is
# the silence and optional-silence phone. Also writes the 48 -> 39 scoring
# map (Lee and Hon, 1989; columns 2 and 3) that local/score.sh gives to
# steps/score.sh. Checks that the training transcripts use only these phones.
# Writes <dict-dir>/{lexicon.txt,silence_phones.txt,nonsilence_phones.txt,
# optional_silence.txt} and <score-map>.
set -euo pipefail

phone_map=conf/phones.60-48-39.map
help_message="Usage: $0 [options] <train-data-dir> <dict-dir> <score-map>
e.g.: $0 data/train data/local/dict data/local/phones.48-39.map"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
train=$1 dict=$2 score_map=$3
require_files "$phone_map" "$train/text"

# Lines of the map: "60 48 39" or a lone 60-set phone that is deleted (q).
bad=$(awk 'NF != 1 && NF != 3 { print FILENAME ":" NR; exit }' "$phone_map")
[ -z "$bad" ] || die "$bad: expected 1 or 3 columns (timit60 train48 score39)"
tmp=$(mktemp -d "${dict%/}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
awk 'NF == 3 { print $2 }' "$phone_map" | sort -u > "$tmp/phones"
grep -qx sil "$tmp/phones" || die "$phone_map: no 'sil' phone in column 2"
echo sil > "$tmp/silence_phones.txt"
echo sil > "$tmp/optional_silence.txt"
grep -vx sil "$tmp/phones" > "$tmp/nonsilence_phones.txt"
awk '{ print $1, $1 }' "$tmp/phones" > "$tmp/lexicon.txt"
cut -d' ' -f2- "$train/text" | tr ' ' '\n' | sed '/^$/d' | sort -u | comm -23 - "$tmp/phones" > "$tmp/oov"
[ -s "$tmp/oov" ] && die "$train/text uses phones outside the 48 of $phone_map: $(tr '\n' ' ' < "$tmp/oov")"
awk 'NF == 3 { print $2, $3 }' "$phone_map" | sort -u > "$tmp/score.map"
awk '{ n[$1]++ } END { for (p in n) if (n[p] > 1) { print p; exit } }' "$tmp/score.map" | grep . &&
  die "$phone_map: a 48-set phone maps to two 39-set phones"
rm "$tmp/phones" "$tmp/oov"
mkdir -p "$(dirname "$score_map")"
replace_file "$tmp/score.map" "$score_map"
chmod "$(printf '%o' $((0777 & ~0$(umask))))" "$tmp"  # mktemp -d made it private
replace_dir "$tmp" "$dict"   # an identical dict leaves $dict untouched
trap - EXIT
log "$dict: $(wc -l < "$dict/lexicon.txt") phones; scoring map $score_map"
