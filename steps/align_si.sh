#!/usr/bin/env bash
# Align a data dir with a GMM-HMM in parallel jobs.
# Writes <ali-dir>/ali.JOB.gz (Kaldi int-vector ark of transition ids),
# final.mdl, cmvn_opts, delta_order and num_jobs.
set -euo pipefail

nj=4
cmd=utils/run_local.sh
beam=10
retry_beam=40
boost_silence=1.0
force=false
help_message="Usage: $0 [options] <data-dir> <lang-dir> <model-dir> <ali-dir>
e.g.: $0 --nj 4 data/train data/lang exp/mono exp/mono_ali"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 4 ]; then echo "$help_message" >&2; exit 1; fi
data=$1 lang=$2 srcdir=$3 dir=$4

require_files "$data/feats.scp" "$data/text" "$lang/L.fst" "$srcdir/final.mdl"
if [ "$force" = false ] && done_marker_ok "$dir" align && [ "$dir/ali.1.gz" -nt "$srcdir/final.mdl" ]; then
  log "$dir: alignments exist; skipping"
  exit 0
fi
nspk=$(wc -l < "$data/spk2utt")
[ "$nj" -gt "$nspk" ] && nj=$nspk
mkdir -p "$dir/log"
rm -f "$dir"/ali.*.gz "$dir/.align.done"
utils/split_data.sh "$data" "$nj"
log "aligning $data with $srcdir/final.mdl in $nj jobs"
$cmd JOB=1:"$nj" "$dir/log/align.JOB.log" \
  python3 -m mtlasr.bin.align_gmm --beam "$beam" --retry-beam "$retry_beam" \
    --boost-silence "$boost_silence" "$lang" "$srcdir" "$data/split$nj/JOB" "$dir/ali.JOB.gz" \
  || die_log "$dir/log/align.*.log" "alignment failed"
for f in final.mdl cmvn_opts delta_order; do cp "$srcdir/$f" "$dir/$f"; done
echo "$nj" > "$dir/num_jobs"
mark_done "$dir" align
log "$dir: $(grep -h 'aligned' "$dir"/log/align.*.log | sed 's/.*INFO //' | tr '\n' ';')"
