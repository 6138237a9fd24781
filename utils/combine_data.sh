#!/usr/bin/env bash
# Combine several data directories into one.
set -euo pipefail

skip_fix=false
help_message="Usage: $0 [--skip-fix false] <dest-data-dir> <src-data-dir-1> [<src-data-dir-2> ...]
e.g.: $0 data/train_all data/train_clean data/train_noisy
Concatenates each data-dir table (utt2spk, text, wav.scp, feats.scp,
segments, vad.scp, utt2*, reco2*, cmvn.scp, spk2*) that every source has;
a table that only some sources have is left out, with a warning naming a
source that lacks it.  Exception: when some sources have segments, the
others get whole-recording segments made from their utt2dur (an error if
they have none).  An id (utterance, recording or speaker) that occurs in
several sources must have the same line in each (white space aside) and is
written once; different lines are an error naming both sources (a speaker
split across sources with different cmvn.scp lines needs its stats
recomputed on the result).  frame_shift must be the same in every source.
Everything is sorted and spk2utt is made anew.  Unless --skip-fix true,
utils/fix_data_dir.sh then drops utterances missing from some table (their
ids end up in <dest-data-dir>/.backup/removed_utts); with --skip-fix true
such a gap is an error.  The result must pass utils/validate_data_dir.sh; it
is built in a temporary folder and moved into place, replacing an earlier
<dest-data-dir> as a whole (which must be a data dir or empty)."

# shellcheck source=utils/data_lib.sh
. "$(dirname "$0")/data_lib.sh"
. "$(dirname "$0")/parse_options.sh"
if [ $# -lt 2 ]; then echo "$help_message" >&2; exit 1; fi
export LC_ALL=C

dest=${1%/}
shift
srcs=()
for s in "$@"; do srcs+=("${s%/}"); done
data_begin "$dest" "${srcs[@]}"
dup=$(printf '%s\n' "${srcs[@]}" | xargs -d '\n' realpath -- | sort | uniq -d | awk 'NR == 1')
[ -z "$dup" ] || log "WARNING: $dup is given more than once; its utterances are kept once"
w=$data_work

has_segments=false
for s in "${srcs[@]}"; do
  if [ -f "$s/segments" ]; then has_segments=true; fi
done

# merge_tables NAME WHAT FILE...: the lines of the FILEs (one a source, in
# the order of srcs) into $data_tmp/NAME, sorted on the first field, each key
# once; die naming both sources when a key has different lines (fields
# compared, so spacing does not matter).  WHAT names the key in messages.
merge_tables() {
  local name=$1 what=$2 i=0 f key j
  shift 2
  for f in "$@"; do
    i=$((i + 1))
    awk -v i="$i" 'NF { print $1, i, $0 }' "$f"
  done | sort -s -k1,1 | awk -v clash="$w/clash" '
    {
      line = substr($0, length($1) + length($2) + 3)
      key = $1; src = $2; $1 = ""; $2 = ""
      if (key == prev) {
        if ($0 != prev_fields) { print key, prev_src, src > clash; exit 1 }
        next
      }
      prev = key; prev_src = src; prev_fields = $0
      print line
    }' > "$data_tmp/$name" && return 0
  [ -s "$w/clash" ] || die "could not merge the ${name} files of the sources"
  read -r key i j < "$w/clash"
  if [ "$i" = "$j" ]; then
    die "$what $key has two different lines in ${srcs[i-1]}/$name"
  fi
  die "$what $key has different lines in ${srcs[i-1]}/$name and ${srcs[j-1]}/$name"
}

# whole_segments SRC: segments of SRC that has none: each utterance is a
# whole recording of the same id, as long as utt2dur says.
whole_segments() {
  [ -f "$1/utt2dur" ] ||
    die "some sources have segments but $1 has neither segments nor utt2dur to make them from"
  awk 'NF { print $1, $1, 0, $2 }' "$1/utt2dur" > "$w/segments.$2"
  echo "$w/segments.$2"
}

left_out=()
while read -r name; do
  kind=$(data_file_kind "$name" "$has_segments")
  case "$kind" in
    derived) continue ;;
    other) left_out+=("$name"); continue ;;
  esac
  files=() lacking=()
  for ((k = 0; k < ${#srcs[@]}; k++)); do
    s=${srcs[k]}
    if [ -f "$s/$name" ]; then files+=("$s/$name")
    elif [ "$name" = segments ]; then files+=("$(whole_segments "$s" "$k")")
    else lacking+=("$s"); fi
  done
  if [ ${#lacking[@]} -gt 0 ]; then
    log "WARNING: $name is missing from ${#lacking[@]} of the ${#srcs[@]} sources" \
      "(first: ${lacking[0]}); leaving it out of $dest"
    continue
  fi
  case "$kind" in
    plain)
      for f in "${files[@]}"; do
        cmp -s "$f" "${files[0]}" || die "$name differs between ${files[0]} and $f"
      done
      cp "${files[0]}" "$data_tmp/$name" ;;
    utt) merge_tables "$name" utterance "${files[@]}" ;;
    reco) merge_tables "$name" recording "${files[@]}" ;;
    spk) merge_tables "$name" speaker "${files[@]}" ;;
  esac
done < <(for s in "${srcs[@]}"; do data_files "$s"; done | sort -u)
data_note_left_out "the sources" "${left_out[@]}"

total=$(cat "${srcs[@]/%//utt2spk}" | awk 'NF' | wc -l)
kept=$(wc -l < "$data_tmp/utt2spk")
[ "$kept" -eq "$total" ] ||
  log "$((total - kept)) utterances occur in more than one source with the same lines; kept once"
if ! $skip_fix; then
  "$data_utils/utt2spk_to_spk2utt.sh" "$data_tmp/utt2spk" > "$w/spk2utt"
  mv "$w/spk2utt" "$data_tmp/spk2utt"
  if ! "$data_utils/fix_data_dir.sh" "$data_tmp" 2> "$w/fix.log"; then
    cat "$w/fix.log" >&2
    die "utils/fix_data_dir.sh failed on the combined data; $dest not written"
  fi
  removed=$(wc -l < "$data_tmp/.backup/removed_utts")
  if [ "$removed" -gt 0 ]; then
    log "WARNING: fix_data_dir.sh removed $removed utterances that some table lacks" \
      "(first: $(head -n 1 "$data_tmp/.backup/removed_utts")); list in $dest/.backup/removed_utts"
  else
    rm -rf "$data_tmp/.backup"
  fi
fi
data_commit "$dest"
log "combined ${#srcs[@]} data dirs into $dest: $(wc -l < "$dest/utt2spk") utterances," \
  "$(wc -l < "$dest/spk2utt") speakers"
