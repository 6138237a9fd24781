#!/usr/bin/env bash
# Make the output-unit table of a CTC model from transcripts: phones (a
# transcript is its space-separated units) or letters (words spelt, with a
# word-separator unit). Writes <lang-dir>/{units.txt,unit_type,unit_counts};
# units.txt has the CTC blank <blk> as 0 (letters with --lexicon-text: also
# lexicon.txt for word decoding). Later texts (dev, test) are checked
# against the units of the first. For sentencepiece pieces use
# steps/train_sentencepiece.sh instead.
set -euo pipefail

unit_type=phone           # phone | letter
space_symbol="<space>"    # letters: the word separator unit
allow_new=false           # true: add units found only in the later texts
lexicon_text=             # letters: also write <lang-dir>/lexicon.txt spelling this text's words
help_message="Usage: $0 [options] <train-text> [<other-text> ...] <lang-dir>
e.g.: $0 data/train/text data/dev/text data/lang_ctc
      $0 --unit-type letter data/train/text.words data/lang_char
      $0 --unit-type letter --lexicon-text data/local/lm/text data/train/text data/lang_char"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -lt 2 ]; then echo "$help_message" >&2; exit 1; fi
dir=${*: -1}
texts=("${@:1:$#-1}")
require_files "${texts[@]}"
opts=(--unit-type "$unit_type" --space-symbol "$space_symbol")
[ "$allow_new" = true ] && opts+=(--allow-new)
[ -z "$lexicon_text" ] || { require_files "$lexicon_text"; opts+=(--lexicon-text "$lexicon_text"); }
mkdir -p "$dir"
python3 -m mtlasr.bin.prepare_units "${opts[@]}" "${texts[@]}" "$dir"
