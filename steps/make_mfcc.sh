#!/usr/bin/env bash
# Compute MFCC features for a data dir in parallel jobs (or, with
# --raw-frames S, the waveform itself cut into frames of S samples: the
# input of the wav2vec2 encoder, S = 160 for 10 ms at 16 kHz).
# Writes <data-dir>/feats.scp and utt2num_frames; the arks go in <mfcc-dir>,
# named raw_mfcc_<name>.<key>.<job>.ark, where <key> stands for what they are
# made from (the audio, the MFCC config, --channel, the code, the number of
# jobs). A redo writes new arks beside the old ones; the old arks are
# removed only after the new feats.scp is in place, so a failing rerun
# leaves the finished features as they were.
# <data-dir>/.mfcc.record (mtlasr.provenance) says what the features were
# made from: a rerun skips the data dir while it matches, and within an
# unfinished redo the jobs whose files are complete.
# Audio is checked (mtlasr.audio): missing, truncated, empty, another sample
# rate than the config's, or several channels without --channel stops with
# an error naming the utterance and the file. Utterances shorter than one
# frame get no features, as in Kaldi: they are counted, listed in
# <log-dir>/skipped_utts_<name>, and removed from the data dir
# (utils/fix_data_dir.sh).
set -euo pipefail

nj=4
cmd=utils/run_local.sh
mfcc_config=conf/mfcc.conf
channel=-1           # -1: the audio must be mono; 0, 1, ...: the channel to take
force=false          # recompute even if up to date
raw_frames=0         # > 0: no MFCCs: the waveform in frames of this many samples (at the config's sample rate)
help_message="Usage: $0 [options] <data-dir> [<log-dir> [<mfcc-dir>]]
e.g.: $0 --nj 4 data/train exp/make_mfcc/train mfcc
      $0 --mfcc-config conf/mfcc_8k.conf --channel 0 data/swbd exp/make_mfcc/swbd mfcc
      $0 --raw-frames 160 data/train_raw exp/make_raw/train_raw raw   # wav2vec2 input"

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
if ! [[ $channel =~ ^(-1|[0-9]+)$ ]]; then die "--channel must be -1 or a channel number, got '$channel'"; fi
[[ $raw_frames =~ ^[0-9]+$ ]] || die "--raw-frames must be a number of samples (0: MFCCs), got '$raw_frames'"
opts="channel=$channel"
[ "$raw_frames" -eq 0 ] || opts+=" raw_frames=$raw_frames"

require_files "$data/wav.scp" "$data/utt2spk" "$mfcc_config"
record=$(step_record "$opts" "$mfcc_config" "$data/wav.scp" "audio:$data/wav.scp")
if [ "$force" = false ] && [ -s "$data/feats.scp" ] && step_fresh "$data" mfcc "$record"; then
  log "$data: MFCCs are up to date; skipping (--force true to redo)"
  exit 0
fi
mkdir -p "$logdir" "$mfccdir"
mfccdir=$(cd "$mfccdir" && pwd)
key=$(printf '%s\nnj=%s\n' "$record" "$nj" | sha1sum | cut -c1-10)
job=$mfccdir/raw_mfcc_$name.$key
abs_data=$(cd "$data" && pwd)
echo "$abs_data" > "$job.owner.tmp"   # whose files these are (for the clean-up below)
atomic_mv "$job.owner.tmp" "$job.owner"
start=$(date +%s)

utils/split_data.sh --per-utt "$data" "$nj"
# A job whose scp exists is complete (its scp is written last); a redo with
# other inputs or options has another key, so it never takes these.
[ "$force" = false ] || rm -f "$job".[0-9]*.scp
$cmd JOB=1:"$nj" "$logdir/make_mfcc_$name.JOB.log" \
  bash -c "[ -s '$job.JOB.scp' ] || python3 -m mtlasr.bin.compute_mfcc --config '$mfcc_config' --channel $channel --raw-frames $raw_frames '$data/split${nj}utt/JOB/wav.scp' '$job.JOB.ark' '$job.JOB.scp'" \
  || die_log "$logdir/make_mfcc_$name.*.log" "MFCC extraction failed for $data"

for n in $(seq "$nj"); do cat "$job.$n.scp"; done | sort > "$data/feats.scp.tmp"
for n in $(seq "$nj"); do cat "$job.$n.utt2num_frames"; done | sort > "$data/utt2num_frames.tmp"
for n in $(seq "$nj"); do cat "$job.$n.skipped"; done | sort > "$logdir/skipped_utts_$name"
[ -s "$data/feats.scp.tmp" ] || die "no utterance of $data got features (see $logdir/skipped_utts_$name)"
old_arks=()
[ -f "$data/feats.scp" ] && mapfile -t old_arks < <(awk '{ sub(/:[0-9]+$/, "", $2); print $2 }' "$data/feats.scp" | sort -u)
atomic_mv "$data/feats.scp.tmp" "$data/feats.scp"
atomic_mv "$data/utt2num_frames.tmp" "$data/utt2num_frames"
nwav=$(wc -l < "$data/wav.scp"); nfeat=$(wc -l < "$data/feats.scp")
if [ "$nfeat" -ne "$nwav" ]; then
  log "WARNING: $((nwav - nfeat)) of $nwav utterances of $data are too short for one frame and got no features" \
      "(listed in $logdir/skipped_utts_$name); removing them from the data dir"
  utils/fix_data_dir.sh "$data"
fi
# The arks the previous feats.scp pointed to, unless the new one does too, and
# the files of earlier keys of this data dir (a data dir written afresh has no
# feats.scp to tell).
for f in "${old_arks[@]}"; do
  grep -qF " $f:" "$data/feats.scp" && continue
  rm -f "$f" "${f%.ark}.scp" "${f%.ark}.utt2num_frames" "${f%.ark}.skipped"
done
for f in "$mfccdir/raw_mfcc_$name".*.owner; do
  if [ "$f" != "$job.owner" ] && [ "$(cat "$f")" = "$abs_data" ]; then rm -f "${f%.owner}".*; fi
done
rm -f "$data/.mfcc.done"  # the marker of earlier versions
# fix_data_dir.sh may have shortened wav.scp: record what the features are made from now.
step_done "$data" mfcc "$(step_record "$opts" "$mfcc_config" "$data/wav.scp" "audio:$data/wav.scp")"
log "$data: MFCCs for $nfeat utterances in $(( $(date +%s) - start )) s"
