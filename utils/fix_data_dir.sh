#!/usr/bin/env bash
# Make a data directory consistent: keep only the utterances that every
# per-utterance file knows about, sort and de-duplicate all files, rebuild
# spk2utt and drop speakers and recordings that are no longer used.
set -euo pipefail

usage="Usage: $0 <data-dir>
e.g.: $0 data/train
An utterance survives if it has a line in utt2spk, text (with a non-empty
transcript), feats.scp, segments (pointing at a recording in wav.scp),
vad.scp, wav.scp (when there is no segments file) and every utt2* file that
exists, and if its speaker is in cmvn.scp and spk2gender when those exist.
The original files are saved in <data-dir>/.backup/ and the removed
utterance ids are written to <data-dir>/.backup/removed_utts."
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then echo "$usage" >&2; exit 0; fi
if [ $# -ne 1 ]; then echo "$usage" >&2; exit 1; fi
data=${1%/}

# shellcheck source=utils/lib.sh
. "$(dirname "$0")/lib.sh"
export LC_ALL=C

require_files "$data/utt2spk"

utt_files=() reco_files=() spk_files=()
for path in "$data"/*; do
  [ -f "$path" ] || continue
  f=$(basename "$path")
  case "$f" in
    spk2utt) ;;                               # regenerated below
    utt2*|text|feats.scp|segments|vad.scp) utt_files+=("$f") ;;
    wav.scp|reco2*)
      if [ -f "$data/segments" ]; then reco_files+=("$f")
      elif [ "$f" = wav.scp ]; then utt_files+=("$f"); fi ;;
    cmvn.scp|spk2*) spk_files+=("$f") ;;
  esac
done

backup=$data/.backup
mkdir -p "$backup"
for f in "${utt_files[@]}" "${reco_files[@]}" "${spk_files[@]}" spk2utt; do
  [ -f "$data/$f" ] && cp -p "$data/$f" "$backup/$f"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# keys FILE: the sorted, unique ids of the lines of FILE that have a value.
keys() { awk 'NF >= 2 { print $1 }' "$1" | sort -u; }
# intersect A B: the ids of list A that are also in list B.
intersect() { awk 'NR == FNR { ok[$1]; next } $1 in ok' "$2" "$1"; }

keys "$data/utt2spk" > "$tmp/utts"
for f in "${utt_files[@]}"; do
  keys "$data/$f" > "$tmp/k"
  intersect "$tmp/utts" "$tmp/k" > "$tmp/u" && mv "$tmp/u" "$tmp/utts"
done
if [ -f "$data/segments" ] && [ -f "$data/wav.scp" ]; then
  # Segments whose recording has no wav.scp entry are unusable.
  keys "$data/wav.scp" > "$tmp/recos"
  awk 'NR == FNR { ok[$1]; next } NF >= 4 && ($2 in ok) { print $1 }' \
    "$tmp/recos" "$data/segments" | sort -u > "$tmp/k"
  intersect "$tmp/utts" "$tmp/k" > "$tmp/u" && mv "$tmp/u" "$tmp/utts"
fi

# Speakers of the surviving utterances that have CMVN stats and a gender
# (when those files exist); then drop the utterances of any other speaker.
awk 'NR == FNR { ok[$1]; next } ($1 in ok) { print $2 }' "$tmp/utts" "$data/utt2spk" |
  sort -u > "$tmp/spks"
for f in cmvn.scp spk2gender; do
  [ -f "$data/$f" ] || continue
  keys "$data/$f" > "$tmp/k"
  intersect "$tmp/spks" "$tmp/k" > "$tmp/s" && mv "$tmp/s" "$tmp/spks"
done
awk 'NR == FNR { ok[$1]; next } ($2 in ok) { print $1 }' "$tmp/spks" "$data/utt2spk" |
  sort -u > "$tmp/k"
intersect "$tmp/utts" "$tmp/k" > "$tmp/u" && mv "$tmp/u" "$tmp/utts"

total=$(keys "$data/utt2spk" | wc -l)
kept=$(wc -l < "$tmp/utts")
[ "$kept" -gt 0 ] || die "no utterance of $data would survive; nothing changed (originals also in $backup)"

# filter IDS FILE: lines of $data/FILE (with a value) whose key is in IDS,
# sorted, first line kept for a repeated key; replaces the file.
filter() {
  awk 'NR == FNR { ok[$1]; next } NF >= 2 && ($1 in ok)' "$1" "$data/$2" |
    sort -s -u -k1,1 > "$tmp/out"
  mv -f "$tmp/out" "$data/$2"
}

keys "$data/utt2spk" | awk 'NR == FNR { ok[$1]; next } !($1 in ok)' "$tmp/utts" - \
  > "$backup/removed_utts"
for f in "${utt_files[@]}"; do filter "$tmp/utts" "$f"; done
if [ -f "$data/segments" ]; then
  awk '{ print $2 }' "$data/segments" | sort -u > "$tmp/recos"
  for f in "${reco_files[@]}"; do filter "$tmp/recos" "$f"; done
fi
for f in "${spk_files[@]}"; do filter "$tmp/spks" "$f"; done
"$(dirname "$0")/utt2spk_to_spk2utt.sh" "$data/utt2spk" > "$tmp/spk2utt"
mv -f "$tmp/spk2utt" "$data/spk2utt"

log "kept $kept of $total utterances of $data; removed $((total - kept))" \
  "(ids in $backup/removed_utts, original files in $backup/)"
