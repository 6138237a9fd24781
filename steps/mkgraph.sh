#!/usr/bin/env bash
# Build the decoding graph HCLG.fst for a model and a lang dir with G.fst.
# Writes <graph-dir>/{HCLG.fst,words.txt,phones.txt}, built in <graph-dir>.next
# and swapped in when complete; <graph-dir>/.mkgraph.record says what it was
# made from (the lang dir with G.fst, the model, the options, the code), and a
# rerun skips while it matches.
set -euo pipefail

self_loop_scale=0.1
transition_scale=1.0
force=false
help_message="Usage: $0 [options] <lang-dir> <model-dir> <graph-dir>
e.g.: $0 data/lang_test_bg exp/mono exp/mono/graph"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
lang=$1 srcdir=$2 dir=$3

require_files "$lang/G.fst" "$lang/L_disambig.fst" "$srcdir/final.mdl"
record=$(step_record "self_loop_scale=$self_loop_scale transition_scale=$transition_scale" "$lang" "$srcdir/final.mdl")
if [ "$force" = false ] && [ -f "$dir/HCLG.fst" ] && step_fresh "$dir" mkgraph "$record"; then
  log "$dir/HCLG.fst is up to date"
  exit 0
fi
next=$dir.next
rm -rf "$next"
mkdir -p "$next/log"
python3 -m mtlasr.bin.mkgraph --self-loop-scale "$self_loop_scale" --transition-scale "$transition_scale" \
  "$lang" "$srcdir/final.mdl" "$next" > "$next/log/mkgraph.log" 2>&1 \
  || die_log "$next/log/mkgraph.log" "graph building failed"
step_done "$next" mkgraph "$record"
replace_dir "$next" "$dir"
log "$(grep 'HCLG:' "$dir/log/mkgraph.log" | sed 's/.*INFO //')"
