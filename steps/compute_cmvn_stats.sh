#!/usr/bin/env bash
# Per-speaker CMVN statistics for a data dir: writes <data-dir>/cmvn.scp.
set -euo pipefail

cmd=utils/run_local.sh
force=false
help_message="Usage: $0 [options] <data-dir> [<log-dir> [<cmvn-dir>]]
e.g.: $0 data/train exp/make_mfcc/train mfcc"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "$help_message" >&2; exit 1
fi
data=$1
logdir=${2:-exp/make_mfcc/$(basename "$data")}
cmvndir=${3:-mfcc}
name=$(basename "$data")

require_files "$data/feats.scp" "$data/spk2utt"
if [ "$force" = false ] && done_marker_ok "$data" cmvn && [ "$data/cmvn.scp" -nt "$data/feats.scp" ]; then
  log "$data: CMVN stats already computed; skipping"
  exit 0
fi
mkdir -p "$logdir" "$cmvndir"
cmvndir=$(cd "$cmvndir" && pwd)
$cmd "$logdir/cmvn_$name.log" \
  python3 -m mtlasr.bin.compute_cmvn_stats "$data/spk2utt" "$data/feats.scp" \
    "$cmvndir/cmvn_$name.ark" "$cmvndir/cmvn_$name.scp" \
  || die_log "$logdir/cmvn_$name.log" "CMVN failed for $data"
sort "$cmvndir/cmvn_$name.scp" > "$data/cmvn.scp.tmp"
atomic_mv "$data/cmvn.scp.tmp" "$data/cmvn.scp"
mark_done "$data" cmvn
log "$data: CMVN stats for $(wc -l < "$data/cmvn.scp") speakers"
