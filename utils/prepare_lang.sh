#!/usr/bin/env bash
# Build a lang dir from a Kaldi dict dir, as Kaldi's utils/prepare_lang.sh.
# The dict dir holds lexicon.txt (word p1 p2 ...) or lexiconp.txt (word prob
# p1 p2 ...), silence_phones.txt, nonsilence_phones.txt, optional_silence.txt.
# Writes <lang-dir>/{phones.txt,words.txt,oov.txt,oov.int,topo,L.fst,
# L_disambig.fst,lexiconp_disambig.txt,phones/*} (see steps/libs/mtlasr/lang.py)
# into a temporary dir and replaces <lang-dir> only when it is complete (an
# identical result leaves it untouched); intermediate lexicons go to
# <tmp-dir>. <lang-dir>/.lang.record says what it was made from; a rerun
# skips while it matches.
set -euo pipefail

sil_prob=0.5                      # optional silence between words; 0: none (phone recognisers)
num_sil_states=5                  # HMM states of silence phones (left-to-right topology)
num_nonsil_states=3               # HMM states of the other phones
position_dependent_phones=false   # only false: no word-position (_B _E _I _S) phones
help_message="Usage: $0 [options] <dict-src-dir> <oov-word> <tmp-dir> <lang-dir>
e.g.: $0 --sil-prob 0.5 data/local/dict \"<unk>\" data/local/lang_tmp data/lang
      $0 --sil-prob 0 --num-sil-states 3 data/local/dict sil data/local/lang_tmp data/lang"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 4 ]; then echo "$help_message" >&2; exit 1; fi
srcdir=$1 oov_word=$2 tmpdir=$3 dir=$4

[ "$position_dependent_phones" = false ] ||
  die "--position-dependent-phones true is not supported: only word-position-independent phones are built"
require_files "$srcdir/silence_phones.txt" "$srcdir/nonsilence_phones.txt" "$srcdir/optional_silence.txt"
[ -f "$srcdir/lexicon.txt" ] || [ -f "$srcdir/lexiconp.txt" ] ||
  die "$srcdir has neither lexicon.txt nor lexiconp.txt"
lexicon=$srcdir/lexicon.txt
[ -f "$srcdir/lexiconp.txt" ] && lexicon=$srcdir/lexiconp.txt
record=$(step_record "oov_word=$oov_word sil_prob=$sil_prob num_sil_states=$num_sil_states num_nonsil_states=$num_nonsil_states" \
  "$srcdir/silence_phones.txt" "$srcdir/nonsilence_phones.txt" "$srcdir/optional_silence.txt" "$lexicon")
if [ -f "$dir/L.fst" ] && step_fresh "$dir" lang "$record"; then
  log "$dir is up to date with $srcdir; skipping"
  exit 0
fi
mkdir -p "$tmpdir"
python3 -m mtlasr.bin.prepare_lang --sil-prob "$sil_prob" --num-sil-states "$num_sil_states" \
  --num-nonsil-states "$num_nonsil_states" --tmp-dir "$tmpdir" "$srcdir" "$oov_word" "$dir" \
  2> "$tmpdir/prepare_lang.log" || die "building $dir failed (see $tmpdir/prepare_lang.log): $(tail -n 1 "$tmpdir/prepare_lang.log")"
step_done "$dir" lang "$record"
log "$(grep 'wrote' "$tmpdir/prepare_lang.log" | sed 's/.*INFO //')"
