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
# FINAL. When FINAL holds the same files (diff -r; logs, which carry time
# stamps, and step records are not compared) TMP is removed and FINAL left
# untouched;
# otherwise the old FINAL is moved aside, TMP moved into place, and only then
# the old one removed.
replace_dir() {
  local tmp=$1 final=$2 old=
  if [ -d "$final" ] && diff -r -q -x '*.log' -x '.*.record' "$tmp" "$final" > /dev/null; then
    rm -rf "$tmp"
    return 0
  fi
  if [ -e "$final" ]; then old=$final.old.$$; mv "$final" "$old"; fi
  mv "$tmp" "$final"
  [ -z "$old" ] || rm -rf "$old"
}

# step_record OPTIONS INPUT...: print the record of what the calling step
# ($0) makes from these options and inputs (mtlasr.provenance): a digest of
# the step's code (its script, the shell files it sources, the Python
# modules it runs), the options, and each input's size and checksum. An
# input written audio:WAV_SCP stands for the audio files that wav.scp lists
# (their sizes and times); tree:DIR for every file under DIR (sizes, times).
step_record() {
  local options=$1 a args=()
  shift
  for a in "$@"; do
    case $a in
      audio:*) args+=(--audio "${a#audio:}") ;;
      tree:*) args+=(--tree "${a#tree:}") ;;
      *) args+=("$a") ;;
    esac
  done
  python3 -m mtlasr.bin.make_record --options "$options" "$0" "${args[@]}"
}

# step_fresh DIR NAME RECORD: succeed if DIR/.NAME.record (written by
# step_done when the step finished) holds RECORD; otherwise say on stderr
# what changed (the code, the options, or which input) and fail.
step_fresh() {
  local file=$1/.$2.record line what
  [ -f "$file" ] || return 1
  [ "$(cat "$file")" = "$3" ] && return 0
  line=$(diff "$file" <(printf '%s\n' "$3") | sed -n 's/^[<>] //p' | head -n 1)
  read -r what line <<< "$line"
  case $what in
    code) what="the code that made it changed" ;;
    options) what="the options changed" ;;
    *) what="$what ${line%% *} changed" ;;
  esac
  log "$1: $2 is out of date ($what); redoing"
  return 1
}

# step_done DIR NAME RECORD: record, last, that the step's outputs in DIR
# are complete and were made from RECORD.
step_done() {
  mkdir -p "$1"
  printf '%s\n' "$3" > "$1/.$2.record.tmp"
  replace_file "$1/.$2.record.tmp" "$1/.$2.record"
}

# publish STAGE DIR: move the finished outputs a step wrote in the staging
# dir STAGE (e.g. DIR/.next) into DIR: a file replaces the one of the same
# name, a sub-directory replaces the old one whole (replace_dir), the logs
# in STAGE/log join DIR/log; then STAGE is removed. Other files of DIR (the
# outputs of later steps, e.g. decode dirs) stay.
publish() {
  local stage=$1 dir=$2 f name
  mkdir -p "$dir/log"
  for f in "$stage"/* "$stage"/.[!.]*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    name=$(basename "$f")
    if [ "$name" = log ] && [ -d "$f" ]; then
      find "$f" -mindepth 1 -maxdepth 1 -exec mv -f {} "$dir/log/" \;
    elif [ -d "$f" ] && [ ! -L "$f" ]; then
      replace_dir "$f" "$dir/$name"
    else
      mv -f -T "$f" "$dir/$name"
    fi
  done
  rm -rf "$stage"
}

# kill_tree PID [SIGNAL]: send SIGNAL (default TERM) to PID and all its
# descendants, children first.
kill_tree() {
  local c
  for c in $(pgrep -P "$1" || true); do kill_tree "$c" "${2:-TERM}"; done
  kill "-${2:-TERM}" "$1" 2> /dev/null || true   # it may have exited meanwhile
}

# _lock_holders LOCK: PIDs of the processes (other than this shell) that
# have LOCK open: the jobs of the run that took it inherit its descriptor.
_lock_holders() {
  local lock p f
  lock=$(readlink -f "$1")
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] || [ "${p#/proc/}" = "$BASHPID" ] && continue
    for f in "$p"/fd/*; do
      # shellcheck disable=SC2015  # a process may vanish while we look
      [ "$(readlink "$f" 2> /dev/null)" = "$lock" ] && { echo "${p#/proc/}"; break; } || true
    done
  done
}

# lock_dir DIR: hold DIR/.lock until this shell and every process it starts
# have exited (they inherit the lock's descriptor), so that two runs never
# write the same experiment at once. When another run holds it: die naming
# its PID and command line (DIR/.lock.info). When the run that took it is
# gone (killed with kill -9) but jobs it started still hold it: stop those
# jobs first, so a rerun never races a leftover.
lock_dir() {
  local dir=$1 lock=$1/.lock info pid holders fd i
  mkdir -p "$dir"
  exec {fd}>> "$lock"
  if ! flock -n "$fd"; then
    info=$(cat "$lock.info" 2> /dev/null || echo "?")
    pid=${info%% *}
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2> /dev/null; then
      die "$dir is in use by another run: PID $info. Wait for it to end, or stop it (kill $pid), then rerun."
    fi
    holders=$(_lock_holders "$lock" | tr '\n' ' ')
    log "WARNING: $dir: the run that held it (PID $pid) is gone, but jobs it started still run (PIDs $holders); stopping them"
    for i in $holders; do kill_tree "$i" TERM; done
    for ((i = 0; i < 20; i++)); do flock -n "$fd" && break; sleep 0.5; done
    if ! flock -n "$fd"; then
      for i in $(_lock_holders "$lock"); do kill_tree "$i" KILL; done
      flock -w 10 "$fd" || die "$dir: could not take $lock from the leftover jobs of PID $pid"
    fi
  fi
  printf '%s %s\n' "$$" "(since $(date '+%Y-%m-%d %H:%M:%S'): $0 $*)" > "$lock.info"
}

# recipe_begin: what every recipe's run.sh does before its stages: one run
# at a time in the recipe's exp/ and data/ (lock_dir); stopping run.sh
# (Ctrl-C, kill) stops every job it started; exp/log/ exists.
recipe_begin() {
  lock_dir exp
  lock_dir data
  trap _recipe_on_stop INT TERM
  mkdir -p exp/log
}
_recipe_on_stop() {
  local c
  log "stopped: ending the jobs of this run"
  for c in $(pgrep -P $$ || true); do kill_tree "$c" TERM; done
  exit 130
}

# run_stage N "description" command...: run one stage of a recipe if it is
# selected ($stage <= N <= $stop_stage, the recipe's options), timing it; a
# stage that found everything up to date (no file under the dirs of
# $stage_watch, default "data exp mfcc", changed) leaves no line in
# $stage_times (default exp/log/stage_times.log). A script that runs beside
# a recipe in its own dirs sets both (local/run_hmm_english.sh).
run_stage() {
  local n=$1 desc=$2 t0 stamp watch times=${stage_times:-exp/log/stage_times.log}
  shift 2
  read -r -a watch <<< "${stage_watch:-data exp mfcc}"
  # shellcheck disable=SC2154  # $stage and $stop_stage are the recipe's options
  if [ "$stage" -le "$n" ] && [ "$stop_stage" -ge "$n" ]; then
    log "Stage $n: $desc"
    t0=$(date +%s)
    stamp=$(mktemp)
    "$@" &        # in the background, so that a signal reaches the trap at once
    wait $!
    if [ -n "$(find "${watch[@]}" -type f -newer "$stamp" ! -name '.lock*' ! -name "$(basename "$times")" \
                 -print -quit 2> /dev/null)" ]; then
      echo "stage $n ($desc): $(( $(date +%s) - t0 )) s" | tee -a "$times" >&2
    fi
    rm -f "$stamp"
  fi
}
