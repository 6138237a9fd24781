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
# caller outside this file and the other shell libraries (*lib.sh), so die
# called via require_files, or from a helper of utils/data_lib.sh, still
# points at the script line that called it.
_lib_msg() {
  local i src=$0 line=0
  for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
    if [[ ${BASH_SOURCE[i]} != *lib.sh ]]; then
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

# log_error_line LOG...: the line of the LOG files (globs allowed) that says
# what went wrong: the last line naming an ERROR, else the last line of a
# Python traceback; prefixed with its file name. Nothing if none.
log_error_line() {
  local f line found=
  for f in "$@"; do
    [ -f "$f" ] || continue
    line=$(grep -E '(^|[ :])ERROR[: ]' "$f" | tail -n 1)
    if [ -z "$line" ] && grep -q '^Traceback' "$f"; then
      line=$(grep -v '^[[:space:]]*$' "$f" | grep -v '^# ' | tail -n 1)
    fi
    [ -n "$line" ] && found="$f: $line"
  done
  [ -n "$found" ] && printf '%s\n' "$found"
  return 0
}

# die_log LOG MSG...: die with "MSG; see LOG" followed, on the next line, by
# the log's error line (log_error_line), so a failing job says why without
# opening the log. LOG may be a glob such as dir/log/align.*.log.
die_log() {
  local pattern=$1 err
  shift
  # shellcheck disable=SC2086  # the pattern is a glob on purpose
  err=$(log_error_line $pattern)
  _lib_msg "ERROR: $*; see $pattern${err:+
  $err}"
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

# replace_file TMP FINAL: move the finished file TMP onto FINAL, unless FINAL
# already has the same bytes: then TMP is removed and FINAL (with its time
# stamp) left as it is, so nothing made from it looks out of date.
replace_file() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    rm -f "$1"
  else
    mv -f "$1" "$2"
  fi
}

# replace_dir TMP FINAL: put the finished directory TMP in the place of
# FINAL. When FINAL holds the same files (diff -r; *.log files, which carry
# time stamps, are not compared) TMP is removed and FINAL left untouched;
# otherwise the old FINAL is moved aside, TMP moved into place, and only then
# the old one removed.
replace_dir() {
  local tmp=$1 final=$2 old=
  if [ -d "$final" ] && diff -r -q -x '*.log' "$tmp" "$final" > /dev/null; then
    rm -rf "$tmp"
    return 0
  fi
  if [ -e "$final" ]; then old=$final.old.$$; mv "$final" "$old"; fi
  mv "$tmp" "$final"
  [ -z "$old" ] || rm -rf "$old"
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
