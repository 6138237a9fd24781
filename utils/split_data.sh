#!/usr/bin/env bash
# Split a data directory into N parts for parallel processing.
set -euo pipefail

help_message="Usage: $0 [--per-utt] <data-dir> <num-to-split>
e.g.: $0 data/train 8     # writes data/train/split8/{1..8}
Splits every per-utterance file (utt2spk, text, feats.scp, segments, vad.scp,
wav.scp, utt2*), the per-recording files (wav.scp and reco2* when segments
exists) and the per-speaker files (cmvn.scp, spk2*; spk2utt is regenerated).
Each speaker stays in one part unless --per-utt is given; parts get roughly
equal numbers of utterances.  With --per-utt the output is
<data-dir>/split<N>utt, so it never gets mixed up with a per-speaker split.
Nothing is done if the split directory is newer than all the source files."
per_utt=false

# shellcheck source=utils/lib.sh
. "$(dirname "$0")/lib.sh"

# --per-utt is a flag without a value, so parse_options.sh is not used.
while [ $# -gt 0 ]; do
  case "$1" in
    --per-utt) per_utt=true; shift ;;
    --help|-h) echo "$help_message" >&2; exit 0 ;;
    --*) die "unknown option $1" ;;
    *) break ;;
  esac
done

if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
data=${1%/}
nj=$2
[[ $nj =~ ^[1-9][0-9]*$ ]] || die "<num-to-split> must be a positive integer, got '$nj'"
require_files "$data/utt2spk"
[ -s "$data/utt2spk" ] || die "$data/utt2spk is empty"

if $per_utt; then splitdir=$data/split${nj}utt; else splitdir=$data/split$nj; fi

# Classify the files to split by what their first field is.
utt_files=() reco_files=() spk_files=()
for path in "$data"/*; do
  [ -f "$path" ] || continue
  f=$(basename "$path")
  case "$f" in
    spk2utt) ;;                                  # regenerated per part
    utt2*|text|feats.scp|segments|vad.scp) utt_files+=("$f") ;;
    wav.scp|reco2*)
      if [ -f "$data/segments" ]; then reco_files+=("$f")
      elif [ "$f" = wav.scp ]; then utt_files+=("$f"); fi ;;
    cmvn.scp|spk2*) spk_files+=("$f") ;;
  esac
done
sources=("${utt_files[@]}" "${reco_files[@]}" "${spk_files[@]}")
[ -f "$data/spk2utt" ] && sources+=(spk2utt)

# Reuse an existing split that is complete and newer than every source.
uptodate=true
for ((n = 1; n <= nj; n++)); do
  [ -f "$splitdir/$n/utt2spk" ] || uptodate=false
done
for f in "${sources[@]}"; do
  [ "$splitdir" -nt "$data/$f" ] || uptodate=false
done
if $uptodate; then
  log "$splitdir is up to date; not splitting again"
  exit 0
fi

for f in "${sources[@]}"; do
  LC_ALL=C sort -c -s -k1,1 "$data/$f" 2>/dev/null ||
    die "$data/$f is not sorted on its first field (run utils/fix_data_dir.sh $data)"
done

tmp=$(mktemp -d "$data/.split$nj.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
maps=$tmp/.maps
mkdir -p "$maps"

# Units that must stay together (speakers, or utterances with --per-utt),
# with their utterance counts, in sorted order.
if $per_utt; then
  awk '{ print $1, 1 }' "$data/utt2spk" > "$maps/units"
else
  awk '{ n[$2]++ } END { for (s in n) print s, n[s] }' "$data/utt2spk" |
    LC_ALL=C sort -k1,1 > "$maps/units"
fi
nunits=$(wc -l < "$maps/units")
[ "$nunits" -ge "$nj" ] || {
  if $per_utt; then what=utterances; else what=speakers; fi
  die "cannot split $data into $nj parts: it has only $nunits $what"
}

# Give each unit a part number so that parts are contiguous runs of units,
# each part is non-empty, and the cumulative utterance count tracks the
# ideal i*total/N boundaries: unit i goes where the middle of it falls,
# clamped so that no part is skipped and enough units remain for the rest.
awk -v N="$nj" '
  { unit[NR] = $1; cnt[NR] = $2; total += $2 }
  END {
    S = NR; prev = 1; before = 0
    for (i = 1; i <= S; i++) {
      p = int((before + cnt[i] / 2) * N / total) + 1
      if (i == 1) p = 1
      if (p < prev) p = prev
      if (p > prev + 1) p = prev + 1
      if (p < N - (S - i)) p = N - (S - i)
      print unit[i], p
      prev = p; before += cnt[i]
    }
  }' "$maps/units" > "$maps/unit2part"

# Maps from utterance, speaker and recording ids to part numbers.
if $per_utt; then
  cp "$maps/unit2part" "$maps/utt2part"
else
  awk 'NR == FNR { part[$1] = $2; next } { print $1, part[$2] }' \
    "$maps/unit2part" "$data/utt2spk" > "$maps/utt2part"
fi
awk 'NR == FNR { part[$1] = $2; next } { print $2, part[$1] }' \
  "$maps/utt2part" "$data/utt2spk" | sort -u > "$maps/spk2part"
if [ -f "$data/segments" ]; then
  awk 'NR == FNR { part[$1] = $2; next } ($1 in part) { print $2, part[$1] }' \
    "$maps/utt2part" "$data/segments" | sort -u > "$maps/reco2part"
fi

# distribute MAP FILE: copy each line of $data/FILE into every part that MAP
# assigns its first field to (a speaker or recording may be in several
# parts); lines whose key is not in MAP are dropped.  Order is preserved, so
# the outputs stay sorted.
distribute() {
  for ((n = 1; n <= nj; n++)); do : > "$tmp/$n/$2"; done
  awk -v dir="$tmp" -v name="$2" '
    NR == FNR { parts[$1] = parts[$1] " " $2; next }
    $1 in parts {
      k = split(parts[$1], p, " ")
      for (j = 1; j <= k; j++) print > (dir "/" p[j] "/" name)
    }' "$1" "$data/$2"
}

for ((n = 1; n <= nj; n++)); do mkdir "$tmp/$n"; done
for f in "${utt_files[@]}"; do distribute "$maps/utt2part" "$f"; done
for f in "${reco_files[@]}"; do distribute "$maps/reco2part" "$f"; done
for f in "${spk_files[@]}"; do distribute "$maps/spk2part" "$f"; done
for ((n = 1; n <= nj; n++)); do
  "$(dirname "$0")/utt2spk_to_spk2utt.sh" "$tmp/$n/utt2spk" > "$tmp/$n/spk2utt"
  [ -f "$data/frame_shift" ] && cp "$data/frame_shift" "$tmp/$n/"
done
rm -r "$maps"

rm -rf "$splitdir"
mv -T "$tmp" "$splitdir" || die "could not move $tmp to $splitdir"
chmod "$(printf '%o' $((0777 & ~0$(umask))))" "$splitdir"  # mktemp -d made it private
touch "$splitdir"       # its mtime marks when the split was made
trap - EXIT
log "split $data into $nj parts in $splitdir"
