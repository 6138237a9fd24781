#!/usr/bin/env bash
# Build the decoding graph HCLG.fst for a model and a lang dir with G.fst.
set -euo pipefail

self_loop_scale=0.1
help_message="Usage: $0 [options] <lang-dir> <model-dir> <graph-dir>
e.g.: $0 data/lang_test_bg exp/mono exp/mono/graph"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
lang=$1 srcdir=$2 dir=$3

require_files "$lang/G.fst" "$lang/L_disambig.fst" "$srcdir/final.mdl"
if [ -f "$dir/HCLG.fst" ] && [ "$dir/HCLG.fst" -nt "$srcdir/final.mdl" ] && [ "$dir/HCLG.fst" -nt "$lang/G.fst" ]; then
  log "$dir/HCLG.fst is up to date"
  exit 0
fi
mkdir -p "$dir/log"
python3 -m mtlasr.bin.mkgraph --self-loop-scale "$self_loop_scale" "$lang" "$srcdir/final.mdl" "$dir" \
  > "$dir/log/mkgraph.log" 2>&1 || die_log "$dir/log/mkgraph.log" "graph building failed"
log "$(grep 'HCLG:' "$dir/log/mkgraph.log" | sed 's/.*INFO //')"
