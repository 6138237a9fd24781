#!/usr/bin/env bash
# Slurm job runner: the interface and log files of utils/run_local.sh, but
# every job runs through `srun`, which blocks until the job ends and copies
# its output back, so the log is still written on this machine. srun's exit
# status is the job's (or 1 when the job could not be allocated, with srun's
# error in the log). tests/test_slurm_cluster.py runs it on a real cluster.
set -euo pipefail

usage() {
  cat >&2 <<EOU
Usage: $(basename "$0") [options] [JOB=a:b] <log-file> <command> [<arg> ...]
e.g.: $(basename "$0") --mem 4G --gpu 1 JOB=1:8 exp/foo/log/train.JOB.log steps/train_part.sh JOB
Same behaviour as utils/run_local.sh; each job is submitted with srun.
Options:
  --mem X            memory per job            (srun --mem=X; default: cluster's)
  --gpu N            GPUs per job              (srun --gres=gpu:N when N > 0)
  --num-threads N    CPU cores per job         (srun --cpus-per-task=N; default 1)
  --time X           wall-clock limit          (srun --time=X; default: cluster's)
  --max-jobs-run N   at most N jobs in flight  (default: all)
Environment: SLURM_EXTRA_OPTS is appended to every srun command line (it is
parsed by bash, e.g. SLURM_EXTRA_OPTS="--partition=gpu --account=speech").
Run inside a Slurm job (a recipe started by sbatch, or a job that calls this
script again), each job is still a job of its own: the enclosing job's
SLURM_* variables are dropped, except SLURM_CONF, SLURM_EXTRA_OPTS and
SLURM_{ACCOUNT,PARTITION,QOS,RESERVATION,CLUSTERS,WCKEY}.
EOU
}

mem='' gpu=0 num_threads=1 time_limit='' max_jobs_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) usage; exit 0 ;;
    --*=*) opt=${1%%=*} val=${1#*=}; shift ;;
    --*)
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      opt=$1 val=$2; shift 2 ;;
    *) break ;;
  esac
  case "$opt" in
    --mem) mem=$val ;;
    --gpu) gpu=$val ;;
    --num-threads) num_threads=$val ;;
    --time) time_limit=$val ;;
    --max-jobs-run) max_jobs_run=$val ;;
    *) echo "$0: unknown option $opt" >&2; exit 1 ;;
  esac
done
nargs=$#
[[ ${1:-} =~ ^[A-Za-z][A-Za-z0-9_]*=[0-9]+(:[0-9]+)?$ ]] && nargs=$((nargs - 1))
if [ "$nargs" -lt 2 ]; then usage; exit 1; fi
[[ $gpu =~ ^[0-9]+$ ]] || { echo "$0: --gpu needs an integer, got '$gpu'" >&2; exit 1; }
[[ $num_threads =~ ^[1-9][0-9]*$ ]] ||
  { echo "$0: --num-threads needs a positive integer, got '$num_threads'" >&2; exit 1; }

# Inside a job, srun would start every job as a step of the enclosing job
# (waiting forever for CPUs the enclosing job holds) and take its
# SLURM_MEM_PER_NODE etc. as options: drop what describes that job.
if [ -n "${SLURM_JOB_ID:-}${SLURM_JOBID:-}" ]; then
  for v in $(compgen -e); do
    case $v in
      SLURM_CONF|SLURM_EXTRA_OPTS|SLURM_ACCOUNT|SLURM_PARTITION|SLURM_QOS) ;;
      SLURM_RESERVATION|SLURM_CLUSTERS|SLURM_WCKEY) ;;
      SLURM_*|SRUN_*) unset "$v" ;;
    esac
  done
fi

# Options are written as single --opt=value words. --quiet keeps srun's
# notes ("job N queued and waiting for resources") out of the logs; its
# errors still go there.
srun_opts=(--quiet --ntasks=1 "--cpus-per-task=$num_threads")
[ -n "$mem" ] && srun_opts+=("--mem=$mem")
[ "$gpu" -gt 0 ] && srun_opts+=("--gres=gpu:$gpu")
[ -n "$time_limit" ] && srun_opts+=("--time=$time_limit")
launcher="srun$(printf ' %q' "${srun_opts[@]}")${SLURM_EXTRA_OPTS:+ $SLURM_EXTRA_OPTS}"

exec "$(dirname "$0")/run_local.sh" --max-jobs-run "$max_jobs_run" \
  --num-threads "$num_threads" --launcher "$launcher" "$@"
