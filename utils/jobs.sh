#!/usr/bin/env bash
# Sourced by a recipe's run.sh (after utils/lib.sh) to run independent jobs
# of one stage side by side. Kept apart from utils/lib.sh, which every step
# sources: a step's record digests the shell files it sources, so a change
# here must not make finished steps look stale.
# Independent jobs of one stage (e.g. the systems of a recipe), at most N at
# a time:
#   jobs_init N; jobs_run NAME command...; ...; jobs_wait
# With N = 1 each command runs in the foreground, as if called directly.
# Otherwise each runs in the background with its output (stdout and stderr)
# on this run's stderr, every line led by "[NAME] ". After a failure no
# new job starts; jobs_wait waits for the running ones to end, then dies
# naming every job that failed.
declare -A _jobs_name=()
# _jobs_die MSG: like die (utils/lib.sh), blaming the script that called jobs_*
_jobs_die() {
  printf '%s (%s:%s) ERROR: %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$(basename "${BASH_SOURCE[2]:-$0}")" \
    "${BASH_LINENO[1]}" "$*" >&2
  exit 1
}
_jobs_max=1
_jobs_failed=()
jobs_init() {
  [[ $1 =~ ^[1-9][0-9]*$ ]] || _jobs_die "jobs_init: the number of jobs at once must be a positive integer, got '$1'"
  _jobs_max=$1
  _jobs_name=()
  _jobs_failed=()
}
jobs_run() {
  local name=$1
  shift
  if [ "$_jobs_max" -eq 1 ]; then
    "$@"
    return
  fi
  while [ ${#_jobs_name[@]} -ge "$_jobs_max" ]; do _jobs_reap; done
  [ ${#_jobs_failed[@]} -eq 0 ] || return 0
  { "$@" 2>&1 | sed -u "s|^|[$name] |" >&2; } &
  _jobs_name[$!]=$name
}
_jobs_reap() {
  local pid='' rc=0
  wait -n -p pid "${!_jobs_name[@]}" || rc=$?
  [ -n "$pid" ] || return 0
  [ "$rc" -eq 0 ] || _jobs_failed+=("${_jobs_name[$pid]}")
  unset "_jobs_name[$pid]"
}
jobs_wait() {
  while [ ${#_jobs_name[@]} -gt 0 ]; do _jobs_reap; done
  [ ${#_jobs_failed[@]} -eq 0 ] || _jobs_die "failed: ${_jobs_failed[*]} (see their lines above)"
}
