#!/usr/bin/env bash
# State carry-over against chunks with left context (issue 12): the
# LSTM-HMM of the recipe's config trained as in seed 000 (chunks of
# chunk.chunk labels, each with chunk.left frames of left context computed
# anew) and with chunk.carry (Kaldi nnet1's multi-stream training: the LSTM
# state passed from chunk to chunk of an utterance, no left context), per
# seed; dev and test PER with the paired bootstrap, and training labels per
# second. The systems run one after the other (--jobs 1, 2 threads each by
# default), chunks then carry for each seed, so that each trains alone on
# the machine: run it on an otherwise idle one. Needs stages
# 0-4 of run.sh; resumable (finished systems are skipped). The table goes to
# exp/carry/carry.md and, with --results FILE, into FILE.
set -euo pipefail

seeds="0 1 2"
jobs=1                             # systems trained/decoded at the same time
threads=2                          # torch threads per training
nnet_config=                       # default: the recipe's (data/local/recipe.conf, from run.sh stage 0)
nnet_opts=                         # overrides for both, e.g. "train.max_epochs=5"
lmwts=                             # LM weights tried on dev (default: steps/decode.sh's)
results=                           # also write the table into this Markdown file
help_message="Usage: $0 [options]
e.g.: $0 --results RESULTS.md"

cmdline="$0 $*"
[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

out=exp/carry
mkdir -p "$out"
for s in $seeds; do
  echo "lstm_chunk_s$s - train.seed=$s"
  echo "lstm_carry_s$s - train.seed=$s chunk.carry=true"
done > "$out/systems"
local/run_systems.sh --jobs "$jobs" --threads "$threads" ${nnet_config:+--nnet-config "$nnet_config"} \
  ${nnet_opts:+--nnet-opts "$nnet_opts"} ${lmwts:+--lmwts "$lmwts"} "$out/systems"
python3 local/make_mtl_table.py --seeds "$seeds" --speed --command "$cmdline" \
  ${results:+--results "$results" --block carry} "$out/carry.md" \
  "chunks, left context (seed 000)=lstm_chunk" "state carry-over (chunk.carry)=lstm_carry"
