#!/usr/bin/env bash
# Helpers shared by the tools that write a new data directory from existing
# ones (subset_data_dir.sh, combine_data.sh, copy_data_dir.sh).  Source it;
# it sources utils/lib.sh too:
#   . utils/data_lib.sh
# It only defines functions and the variable data_utils (this folder).
#
# A new data dir is built in a temporary folder beside <dest> (data_begin),
# then given a fresh spk2utt, validated and renamed into place
# (data_commit); a failure at any point removes the temporary folder and
# leaves <dest> as it was.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "Usage: . utils/data_lib.sh   (a library: source it)" >&2
  echo "e.g.: . utils/data_lib.sh; data_file_kind wav.scp false" >&2
  [ "${1:-}" = --help ] && exit 0
  exit 1
fi

data_utils=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=utils/lib.sh
. "$data_utils/lib.sh"

# data_file_kind NAME HAS_SEGMENTS: what the first field of the data-dir file
# NAME is, given whether the dir has a segments file (true/false):
#   utt      utterance id (text, text.* such as text.words, feats.scp,
#            segments, vad.scp, utt2*, and
#            wav.scp and reco2* when there is no segments file, since then
#            each recording is one utterance)
#   reco     recording id (wav.scp and reco2* beside a segments file)
#   spk      speaker id (cmvn.scp, spk2* other than spk2utt)
#   derived  spk2utt: made again from utt2spk, never copied
#   plain    frame_shift: copied as it is
#   other    anything else: not a data-dir table, not carried over
data_file_kind() {
  case "$1" in
    spk2utt) echo derived ;;
    utt2*|text|text.*|feats.scp|segments|vad.scp) echo utt ;;
    wav.scp|reco2*) if [ "$2" = true ]; then echo reco; else echo utt; fi ;;
    cmvn.scp|spk2*) echo spk ;;
    frame_shift) echo plain ;;
    *) echo other ;;
  esac
}

# data_files DIR: the names of the regular files of DIR, one a line, sorted.
data_files() {
  local p
  for p in "$1"/*; do
    if [ -f "$p" ]; then basename "$p"; fi
  done | LC_ALL=C sort
}

# data_sort FILE: sort FILE in place on its first field (LC_ALL=C, stable,
# so lines with the same key keep their order).
data_sort() {
  LC_ALL=C sort -s -k1,1 "$1" > "$1.sorting"
  mv -f "$1.sorting" "$1"
}

# data_keep IDS FILE OUT: the lines of FILE whose first field is the first
# field of a line of IDS, sorted on that field, into OUT.
data_keep() {
  "$data_utils/filter_scp.sh" "$1" "$2" | LC_ALL=C sort -s -k1,1 > "$3"
}

# data_check_dest DEST SRC...: die unless every SRC is a data dir (it has
# utt2spk) and DEST can be (re)written without touching a SRC: DEST must not
# be a SRC nor contain one, and an existing DEST must be an empty folder or a
# data dir, since it is replaced as a whole.
data_check_dest() {
  local dest=$1 d s real
  shift
  d=$(realpath -m -- "$dest")
  for s in "$@"; do
    require_files "$s/utt2spk"
    real=$(realpath -- "$s")
    [ "$real" != "$d" ] || die "<dest-data-dir> $dest is the source $s; write the result elsewhere"
    case "$real/" in
      "$d"/*) die "source $s is inside <dest-data-dir> $dest, which would be replaced" ;;
    esac
  done
  if [ -e "$dest" ] || [ -L "$dest" ]; then
    [ -d "$dest" ] || die "$dest exists and is not a directory"
    [ -f "$dest/utt2spk" ] || [ -z "$(ls -A "$dest")" ] ||
      die "$dest exists and is not a data dir (it has no utt2spk); not replacing it"
  fi
}

# data_begin DEST SRC...: check DEST and the SRCs (data_check_dest), then
# make the temporary folder the new DEST is built in, beside DEST so that
# data_commit only renames; set data_tmp to it and data_work to a scratch
# folder inside it.  Both are removed on exit unless committed.
data_begin() {
  local parent
  data_check_dest "$@"
  parent=$(dirname "$1")
  mkdir -p "$parent"
  data_tmp=$(mktemp -d "$parent/.$(basename "$1").tmp.XXXXXX")
  trap 'rm -rf "$data_tmp"' EXIT
  data_work=$data_tmp/.work
  mkdir "$data_work"
}

# data_validate DIR DEST: run validate_data_dir.sh on DIR, not requiring the
# optional files DIR lacks; on failure die with its message, naming DEST in
# place of DIR.
data_validate() {
  local dir=$1 dest=$2 opts=() out
  [ -f "$dir/text" ] || opts+=(--no-text)
  [ -f "$dir/feats.scp" ] || opts+=(--no-feats)
  [ -f "$dir/wav.scp" ] || opts+=(--no-wav)
  if ! out=$("$data_utils/validate_data_dir.sh" "${opts[@]}" "$dir" 2>&1); then
    out=${out##*ERROR: }
    die "the new $dest would not be a valid data dir, so it was not written: ${out//"$dir"/$dest}"
  fi
}

# data_commit DEST: give data_tmp a fresh spk2utt, validate it and move it
# into place as DEST, replacing an earlier DEST as a whole.
data_commit() {
  local dest=$1 old
  "$data_utils/utt2spk_to_spk2utt.sh" "$data_tmp/utt2spk" > "$data_work/spk2utt"
  mv -f "$data_work/spk2utt" "$data_tmp/spk2utt"
  rm -rf "$data_work"
  data_validate "$data_tmp" "$dest"
  chmod "$(printf '%o' $((0777 & ~0$(umask))))" "$data_tmp"  # mktemp -d made it private
  if [ -e "$dest" ]; then
    old=$(mktemp -d "$(dirname "$dest")/.$(basename "$dest").old.XXXXXX")
    mv -T "$dest" "$old" || die "could not move the old $dest aside to $old"
    if ! mv -T "$data_tmp" "$dest"; then
      mv -T "$old" "$dest"
      die "could not move $data_tmp to $dest (the old $dest is back in place)"
    fi
    rm -rf "$old"
  else
    mv -T "$data_tmp" "$dest" || die "could not move $data_tmp to $dest"
  fi
  trap - EXIT
}

# data_note_left_out SRC NAME...: log the files of SRC that are not
# data-dir tables and so are not in the result.
data_note_left_out() {
  local src=$1
  shift
  [ $# -eq 0 ] || log "not carried over from $src (not data-dir tables): $*"
}
