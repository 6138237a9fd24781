#!/usr/bin/env bash
# Make a test lang dir: a copy of <lang-dir> plus G.fst built from an ARPA LM
# (gzipped if it ends in .gz) by mtlasr.bin.arpa_to_g. ARPA words missing from
# words.txt are counted and logged; their n-grams are left out of G, as
# Kaldi's arpa2fst does (see steps/libs/mtlasr/bin/arpa_to_g.py).
# <out-lang-dir> is built beside itself and replaced only when complete;
# the conversion log is <out-lang-dir>/format_lm.log; <out-lang-dir>/
# .format_lm.record says what it was made from, and a rerun skips while it
# matches.
set -euo pipefail

help_message="Usage: $0 <lang-dir> <arpa-lm> <out-lang-dir>
e.g.: $0 data/lang data/local/lm/lm.arpa data/lang_test_tg"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
lang=$1 arpa=$2 out=$3

require_files "$lang/words.txt" "$lang/L_disambig.fst" "$lang/phones.txt" "$arpa"
[ "$(readlink -f "$lang")" != "$(readlink -f "$out")" ] || die "<out-lang-dir> must differ from <lang-dir> ($lang)"
record=$(step_record "" "$lang" "$arpa")
if [ -f "$out/G.fst" ] && step_fresh "$out" format_lm "$record"; then
  log "$out/G.fst is up to date with $arpa; skipping"
  exit 0
fi
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -r "$lang"/. "$tmp"/
rm -f "$tmp/G.fst" "$tmp/format_lm.log" "$tmp"/.*.record
python3 -m mtlasr.bin.arpa_to_g "$arpa" "$lang/words.txt" "$tmp/G.fst" > "$tmp/format_lm.log" 2>&1 ||
  die "converting $arpa failed: $(grep -m1 ERROR "$tmp/format_lm.log" || tail -n 1 "$tmp/format_lm.log")"
chmod --reference="$lang" "$tmp"
replace_dir "$tmp" "$out"   # an identical result leaves $out untouched
step_done "$out" format_lm "$record"
while read -r line; do log "$line"; done < <(sed -n -E 's/.* (INFO|WARNING) (.*ARPA words.*)/\2/p' "$out/format_lm.log")
log "wrote $out/G.fst from $arpa"
