#!/usr/bin/env bash
# Align a data dir with a GMM-HMM in parallel jobs.
# Writes <ali-dir>/ali.JOB.gz (Kaldi int-vector ark of transition ids),
# final.mdl, cmvn_opts, delta_order and num_jobs. <ali-dir>/.align.record says
# what they were made from; a rerun skips while it matches, and a redo
# replaces the old alignments only when every job succeeded.
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
record=$(step_record "beam=$beam retry_beam=$retry_beam boost_silence=$boost_silence" \
  "$data/feats.scp" "$data/cmvn.scp" "$data/text" "$lang" "$srcdir/final.mdl" "$srcdir/cmvn_opts" "$srcdir/delta_order")
if [ "$force" = false ] && [ -f "$dir/ali.1.gz" ] && step_fresh "$dir" align "$record"; then
  log "$dir: alignments are up to date; skipping"
  exit 0
fi
nspk=$(wc -l < "$data/spk2utt")
[ "$nj" -gt "$nspk" ] && nj=$nspk
# Aligned into $dir/.next; the old alignments go only when all jobs succeeded.
next=$dir/.next
rm -rf "$next"
mkdir -p "$next/log"
utils/split_data.sh "$data" "$nj"
log "aligning $data with $srcdir/final.mdl in $nj jobs"
$cmd JOB=1:"$nj" "$next/log/align.JOB.log" \
  python3 -m mtlasr.bin.align_gmm --beam "$beam" --retry-beam "$retry_beam" \
    --boost-silence "$boost_silence" "$lang" "$srcdir" "$data/split$nj/JOB" "$next/ali.JOB.gz" \
  || die_log "$next/log/align.*.log" "alignment failed"
for f in final.mdl cmvn_opts delta_order; do cp "$srcdir/$f" "$next/$f"; done
echo "$nj" > "$next/num_jobs"
rm -f "$dir"/ali.*.gz "$dir"/log/align.*.log "$dir/.align.done"
publish "$next" "$dir"
step_done "$dir" align "$record"
log "$dir: $(grep -h 'aligned' "$dir"/log/align.*.log | sed 's/.*INFO //' | tr '\n' ';')"
