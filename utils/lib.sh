#!/usr/bin/env bash
# Shared helpers for the shell scripts of this toolkit.  Source it:
#   . utils/lib.sh
# It only defines functions; it does not change shell options.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "Usage: . utils/lib.sh   (a library: source it, do not run it)" >&2
  echo "e.g.: . utils/lib.sh; log \"starting\"" >&2
  [ "${1:-}" = --help ] && exit 0
  exit 1
fi

# _lib_msg MSG...: print MSG with a timestamp and the location of the first
# caller outside this file (so die called via require_files still points at
# the script line that called require_files).
_lib_msg() {
  local i src=$0 line=0
  for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
    if [ "${BASH_SOURCE[i]}" != "${BASH_SOURCE[0]}" ]; then
      src=${BASH_SOURCE[i]} line=${BASH_LINENO[i-1]}
      break
    fi
  done
  printf '%s (%s:%s) %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" \
    "$(basename "$src")" "$line" "$*" >&2
}

# log MSG...: timestamped message on stderr, tagged with the caller's
# script name and line number (BASH_SOURCE[1] / BASH_LINENO[0] of log).
log() { _lib_msg "$@"; }

# die MSG...: log "ERROR: MSG" and exit 1.
die() {
  _lib_msg "ERROR: $*"
  exit 1
}

# require_files F...: die naming the first argument that is not a file.
require_files() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || die "required file $f does not exist"
  done
}

# done_marker_ok DIR NAME: succeed if stage NAME in DIR was marked as done.
done_marker_ok() {
  [ -f "$1/.$2.done" ]
}

# mark_done DIR NAME: record that stage NAME in DIR completed.
mark_done() {
  mkdir -p "$1" && touch "$1/.$2.done"
}

# atomic_mv TMP FINAL: move a finished temporary file into place, refusing
# to clobber FINAL with a missing or empty result.
atomic_mv() {
  [ -s "$1" ] || die "atomic_mv: $1 is missing or empty; not moving to $2"
  mv -f "$1" "$2"
}

# config_fresh DIR CONFIG FILE...: succeed if DIR/config holds CONFIG (a
# step's options) and is newer than every FILE (its inputs), i.e. DIR was
# made, or is being made, from these options and inputs.
config_fresh() {
  local dir=$1 config=$2 f
  shift 2
  [ -f "$dir/config" ] && [ "$(cat "$dir/config")" = "$config" ] || return 1
  for f in "$@"; do [ "$dir/config" -nt "$f" ] || return 1; done
}

# write_config DIR CONFIG: record a step's options in DIR/config, atomically.
write_config() {
  printf '%s\n' "$2" > "$1/config.tmp"
  atomic_mv "$1/config.tmp" "$1/config"
}
