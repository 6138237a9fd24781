#!/usr/bin/env bash
# Compute MFCC features for a data dir in parallel jobs.
# Writes <data-dir>/feats.scp and utt2num_frames; ark files go in <mfcc-dir>.
# A rerun skips a finished data dir, and within an unfinished one the jobs
# whose scp is already written.
set -euo pipefail

nj=4
cmd=utils/run_local.sh
mfcc_config=conf/mfcc.conf
force=false          # recompute even if done
help_message="Usage: $0 [options] <data-dir> [<log-dir> [<mfcc-dir>]]
e.g.: $0 --nj 4 data/train exp/make_mfcc/train mfcc"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "$help_message" >&2; exit 1
fi
data=$1
logdir=${2:-exp/make_mfcc/$(basename "$data")}
mfccdir=${3:-mfcc}
name=$(basename "$data")

require_files "$data/wav.scp" "$data/utt2spk" "$mfcc_config"
if [ "$force" = false ] && done_marker_ok "$data" mfcc && [ "$data/feats.scp" -nt "$data/wav.scp" ]; then
  log "$data: MFCCs already computed; skipping (--force true to redo)"
  exit 0
fi
[ "$force" = true ] && rm -f "$mfccdir"/raw_mfcc_"$name".*.scp
rm -f "$data/.mfcc.done"
mkdir -p "$logdir" "$mfccdir"
mfccdir=$(cd "$mfccdir" && pwd)
start=$(date +%s)

utils/split_data.sh --per-utt "$data" "$nj"
# A job whose scp exists, is newer than wav.scp and holds exactly the job's
# utterances finished; only the others run (another data dir with the same
# name must not lend its features).
for n in $(seq "$nj"); do
  scp=$mfccdir/raw_mfcc_$name.$n.scp
  if [ ! -s "$scp" ] || [ "$data/wav.scp" -nt "$scp" ] ||
     ! cmp -s <(cut -d' ' -f1 "$scp") <(cut -d' ' -f1 "$data/split${nj}utt/$n/wav.scp"); then
    rm -f "$scp"
  fi
done
$cmd JOB=1:"$nj" "$logdir/make_mfcc_$name.JOB.log" \
  bash -c "[ -s '$mfccdir/raw_mfcc_$name.JOB.scp' ] || python3 -m mtlasr.bin.compute_mfcc --config '$mfcc_config' '$data/split${nj}utt/JOB/wav.scp' '$mfccdir/raw_mfcc_$name.JOB.ark' '$mfccdir/raw_mfcc_$name.JOB.scp'" \
  || die_log "$logdir/make_mfcc_$name.*.log" "MFCC extraction failed for $data"

for n in $(seq "$nj"); do cat "$mfccdir/raw_mfcc_$name.$n.scp"; done | sort > "$data/feats.scp.tmp"
for n in $(seq "$nj"); do cat "$mfccdir/raw_mfcc_$name.$n.utt2num_frames"; done | sort > "$data/utt2num_frames.tmp"
atomic_mv "$data/feats.scp.tmp" "$data/feats.scp"
atomic_mv "$data/utt2num_frames.tmp" "$data/utt2num_frames"
nwav=$(wc -l < "$data/wav.scp"); nfeat=$(wc -l < "$data/feats.scp")
if [ "$nfeat" -ne "$nwav" ]; then
  log "WARNING: $((nwav - nfeat)) of $nwav utterances of $data got no features (see $logdir); fixing the data dir"
  utils/fix_data_dir.sh "$data"
fi
mark_done "$data" mfcc
log "$data: MFCCs for $nfeat utterances in $(( $(date +%s) - start )) s"
