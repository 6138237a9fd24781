#!/usr/bin/env bash
# Per-speaker CMVN statistics for a data dir: writes <data-dir>/cmvn.scp, the
# ark in <cmvn-dir> (cmvn_<name>.<key>.ark, <key> standing for what it is made
# from). <data-dir>/.cmvn.record says what the stats were made from
# (feats.scp, spk2utt, the code): a rerun skips while it matches. The old ark
# is removed only after the new cmvn.scp is in place.
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
record=$(step_record "" "$data/feats.scp" "$data/spk2utt")
if [ "$force" = false ] && [ -s "$data/cmvn.scp" ] && step_fresh "$data" cmvn "$record"; then
  log "$data: CMVN stats are up to date; skipping"
  exit 0
fi
mkdir -p "$logdir" "$cmvndir"
cmvndir=$(cd "$cmvndir" && pwd)
out=$cmvndir/cmvn_$name.$(printf '%s\n' "$record" | sha1sum | cut -c1-10)
$cmd "$logdir/cmvn_$name.log" \
  python3 -m mtlasr.bin.compute_cmvn_stats "$data/spk2utt" "$data/feats.scp" "$out.ark" "$out.scp" \
  || die_log "$logdir/cmvn_$name.log" "CMVN failed for $data"
old=
[ -f "$data/cmvn.scp" ] && old=$(awk 'NR == 1 { sub(/:[0-9]+$/, "", $2); print $2 }' "$data/cmvn.scp")
sort "$out.scp" > "$data/cmvn.scp.tmp"
atomic_mv "$data/cmvn.scp.tmp" "$data/cmvn.scp"
if [ -n "$old" ] && [ "$old" != "$out.ark" ]; then rm -f "$old" "${old%.ark}.scp"; fi
rm -f "$data/.cmvn.done"  # the marker of earlier versions
step_done "$data" cmvn "$record"
log "$data: CMVN stats for $(wc -l < "$data/cmvn.scp") speakers"
