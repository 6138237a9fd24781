#!/usr/bin/env bash
# Local parallel job runner (the default $train_cmd / $decode_cmd).
set -euo pipefail

usage() {
  cat >&2 <<EOU
Usage: $(basename "$0") [options] [JOB=a:b] <log-file> <command> [<arg> ...]
e.g.: $(basename "$0") --max-jobs-run 4 JOB=1:8 exp/foo/log/bar.JOB.log steps/do_thing.sh --part JOB
Runs the command once per job index in the range (or once, if no range is
given), replacing the string JOB in the log-file name and in every command
argument by the index.  One command argument is run verbatim by bash (it may
contain pipes); several are quoted one by one, so "ark:gunzip -c x.gz|"
stays a single argument.  Each job's stdout and stderr go to its log file.
Options:
  --max-jobs-run N   run at most N jobs at once (default: as many as the
                     cores hold, cores / --num-threads, at least 1; the
                     others wait for a free slot)
  --num-threads N    threads each job uses (default 1): checked against the
                     cores (see below); the job is not limited to them
  --mem X, --gpu N, --time X
                     accepted for compatibility with utils/slurm.sh; ignored
  --launcher CMD     run each job as: CMD bash -c <command> (used by
                     utils/slurm.sh; CMD is parsed by bash)
Cores: by default no more jobs run at once than the cores hold, so that
jobs x --num-threads <= cores. When they would exceed the cores anyway
(--max-jobs-run set higher, or one job with more threads than cores), a
warning says so (oversubscribed jobs can run many times slower). The cores are \$MTL_NUM_CORES if set, else nproc
(the CPU affinity of this process). Each job gets MTL_NUM_CORES set to its
share: the cores divided by the jobs at once (at least 1), or with
--launcher the --num-threads it was allocated; programs that set their
threads through mtlasr.threads cap them at it.
EOU
}

# shellcheck source=utils/lib.sh
. "$(dirname "$0")/lib.sh"   # kill_tree, log

max_jobs_run=0   # 0 = no limit
num_threads=1
launcher=
var=JOB first=1 last=1 have_range=false

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) usage; exit 0 ;;
    --max-jobs-run|--mem|--gpu|--num-threads|--time|--launcher)
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      case "$1" in
        --max-jobs-run) max_jobs_run=$2 ;;
        --num-threads) num_threads=$2 ;;
        --launcher) launcher=$2 ;;
      esac
      shift 2 ;;
    --max-jobs-run=*) max_jobs_run=${1#*=}; shift ;;
    --num-threads=*) num_threads=${1#*=}; shift ;;
    --launcher=*) launcher=${1#*=}; shift ;;
    --mem=*|--gpu=*|--time=*) shift ;;
    --*) echo "$0: unknown option $1" >&2; exit 1 ;;
    *)
      # Job range: VAR=a:b, or VAR=a for a single job.
      if [[ $1 =~ ^([A-Za-z][A-Za-z0-9_]*)=([0-9]+)(:([0-9]+))?$ ]]; then
        $have_range && { echo "$0: more than one job range given" >&2; exit 1; }
        var=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]}
        last=${BASH_REMATCH[4]:-$first} have_range=true
        shift
      else
        break
      fi ;;
  esac
done

if [ $# -lt 2 ]; then usage; exit 1; fi
[[ $max_jobs_run =~ ^[0-9]+$ ]] ||
  { echo "$0: --max-jobs-run must be a non-negative integer" >&2; exit 1; }
[[ $num_threads =~ ^[1-9][0-9]*$ ]] ||
  { echo "$0: --num-threads must be a positive integer, got '$num_threads'" >&2; exit 1; }
first=$((10#$first)) last=$((10#$last))
[ "$first" -le "$last" ] ||
  { echo "$0: empty job range $var=$first:$last" >&2; exit 1; }
logfile=$1; shift
if [ "$first" -lt "$last" ] && [[ $logfile != *"$var"* ]]; then
  echo "$0: the log file name $logfile must contain $var when running several jobs" >&2
  exit 1
fi
$have_range || var=''   # without a range nothing is substituted
threads=1
[ -n "$launcher" ] && threads=$num_threads

# The cores: $MTL_NUM_CORES (a calling runner's share, or the user's limit),
# else nproc, which would also obey OMP_NUM_THREADS (the steps export it).
if [ -n "${MTL_NUM_CORES:-}" ]; then
  [[ $MTL_NUM_CORES =~ ^[1-9][0-9]*$ ]] ||
    { echo "$0: MTL_NUM_CORES must be a positive integer, got '$MTL_NUM_CORES'" >&2; exit 1; }
  cores=$MTL_NUM_CORES
else
  cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
fi
njobs=$((last - first + 1))
if [ "$max_jobs_run" -eq 0 ] && [ -z "$launcher" ]; then
  # as many at once as the cores hold; a cluster (--launcher) allocates its own
  max_jobs_run=$((cores / num_threads))
  [ "$max_jobs_run" -ge 1 ] || max_jobs_run=1
fi
at_once=$njobs
[ "$max_jobs_run" -gt 0 ] && [ "$max_jobs_run" -lt "$njobs" ] && at_once=$max_jobs_run
if [ -n "$launcher" ]; then
  job_cores=$num_threads   # what the launcher allocates to each job
else
  if [ $((at_once * num_threads)) -gt "$cores" ]; then
    log "WARNING: $at_once jobs at once x $num_threads thread(s) each = $((at_once * num_threads)) threads" \
      "on $cores core(s) ($logfile); oversubscribed jobs can run many times slower. Run fewer jobs at once" \
      "(--max-jobs-run; by default as many as the cores hold) or fewer threads (--num-threads)," \
      "so that jobs x threads <= $cores" \
      "(the cores: \$MTL_NUM_CORES, else nproc)"
  fi
  job_cores=$((cores / at_once))
  [ "$job_cores" -ge 1 ] || job_cores=1
fi
export MTL_NUM_CORES=$job_cores

# subst STRING INDEX: STRING with every occurrence of $var replaced by INDEX.
subst() {
  if [ -n "$var" ]; then printf '%s' "${1//"$var"/$2}"; else printf '%s' "$1"; fi
}

# job_command INDEX ARG...: the bash command line for one job.
job_command() {
  local j=$1 a cmd=''
  shift
  if [ $# -eq 1 ]; then
    cmd=$(subst "$1" "$j")
  else
    for a in "$@"; do cmd+="$(printf '%q' "$(subst "$a" "$j")") "; done
    cmd=${cmd% }
  fi
  if [ -n "$launcher" ]; then cmd="$launcher bash -c $(printf '%q' "$cmd")"; fi
  printf '%s' "$cmd"
}

# run_job INDEX LOG ARG...: run one job, writing LOG; the exit code is stored
# in $statdir/INDEX because `wait -n` does not tell which job finished.
run_job() {
  local j=$1 log=$2 cmd start rc=0 end
  shift 2
  cmd=$(job_command "$j" "$@")
  mkdir -p "$(dirname "$log")"
  start=$(date +%s)
  {
    echo "# $cmd"
    echo "# Started at $(date)"
  } > "$log"
  bash -c "$cmd" >> "$log" 2>&1 || rc=$?
  end=$(date +%s)
  {
    echo "# Accounting: time=$((end - start)) threads=$threads"
    echo "# Ended (code $rc) at $(date), elapsed time $((end - start)) seconds"
  } >> "$log"
  echo "$rc" > "$statdir/$j"
}

# On INT/TERM, terminate every job with all its descendants: background jobs
# ignore SIGINT in a non-interactive shell, so Ctrl-C alone would not stop them.
# shellcheck disable=SC2317  # reached only via the trap below (false positive)
on_signal() {
  local p
  for p in "${pids[@]}"; do kill_tree "$p"; done
  exit 130
}

statdir=$(mktemp -d)
pids=()
trap 'rm -rf "$statdir"' EXIT
trap on_signal INT TERM

running=0
for ((j = first; j <= last; j++)); do
  if [ "$max_jobs_run" -gt 0 ] && [ "$running" -ge "$max_jobs_run" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  # Parallel jobs must not compete for our stdin; a lone job may read it.
  if [ "$njobs" -gt 1 ]; then
    run_job "$j" "$(subst "$logfile" "$j")" "$@" < /dev/null &
  else
    run_job "$j" "$(subst "$logfile" "$j")" "$@" &
  fi
  pids+=($!)
  running=$((running + 1))
done
wait || true

nfail=0 faillog=''
for ((j = first; j <= last; j++)); do
  rc=$(cat "$statdir/$j" 2>/dev/null || echo missing)
  if [ "$rc" != 0 ]; then
    nfail=$((nfail + 1))
    [ -n "$faillog" ] || faillog=$(subst "$logfile" "$j")
  fi
done
if [ "$nfail" -gt 0 ]; then
  echo "$(basename "$0"): $nfail / $njobs failed, log is in $faillog" >&2
  exit 1
fi
exit 0
