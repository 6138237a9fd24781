#!/usr/bin/env bash
# shellcheck disable=SC2154,SC2034  # reads and sets the variables of the step that sources it (nj, cmd, force, sdata, ...)
# The EM driver of steps/ivector/train_diag_ubm.sh, train_full_ubm.sh and
# train_ivector_extractor.sh, and the job helpers they share with
# extract_ivectors.sh. Source it after utils/lib.sh (it uses log, die,
# atomic_mv, config_fresh, write_config, done_marker_ok and mark_done):
#   . utils/lib.sh
#   . steps/ivector/em_lib.sh
# It only defines functions; it does not change shell options.
#
# A step trains the models DIR/N.EXT, the model after N EM iterations
# (N = 0 .. NUM_ITERS), and links DIR/final.EXT -> NUM_ITERS.EXT:
#
#   em_begin DIR EXT ACC NUM_ITERS WHAT CHANGED CONFIG INPUT...
#       Skip, start again or resume (see below). ACC names the accumulator
#       of iteration X and job JOB: a printf format whose %s is X, with the
#       word JOB in it ('%s.JOB.acc' gives DIR/3.2.acc). WHAT names the
#       model in the log ("diagonal UBM"), CHANGED what a restart blames
#       ("options or features"), CONFIG is the step's options (DIR/config),
#       INPUT... its input files (utils/lib.sh config_fresh).
#   em_train DATA EST_LOG EST_WHAT CLEANUP
#       The iterations on DATA, split into $nj parts by speaker (the hooks
#       find the parts in $sdata/JOB). EST_LOG names the estimation log
#       (DIR/log/EST_LOG.X.log), EST_WHAT the estimation in an error. With
#       CLEANUP true only the latest DIR/N.EXT is kept.
#
# and defines these hooks before calling them:
#   em_restart      (optional) when DIR starts again, after its models,
#                   accumulators and per-job .npz files are deleted and
#                   before DIR/config is written: the step's own files
#                   (copies of its source dir, derived configs).
#   em_init         make DIR/0.EXT (called when DIR holds no N.EXT).
#   em_prepare      (optional) before the iterations: the per-job files they
#                   read, e.g. Gaussian selections (see em_missing).
#   em_acc X ACC    set the array em_cmd to the command of one job that
#                   accumulates iteration X into ACC (its JOB is the job).
#   em_est X        set em_cmd to the estimation command of iteration X;
#                   em_train appends --iteration X --objf-file DIR/objf
#                   DIR/X.EXT DIR/X+1.EXT and the accumulators.
#
# Skip, start again, resume (em_begin, em_train):
#   * done (DIR/.train.done), DIR/final.EXT -> NUM_ITERS.EXT, CONFIG
#     unchanged and no INPUT newer than DIR/config: log "DIR: WHAT already
#     trained; skipping" and exit 0 (the step ends there);
#   * --force true, or CONFIG or an INPUT changed: delete the models, the
#     accumulators, the per-job .npz files and objf, call em_restart, write
#     DIR/config; the training starts from em_init;
#   * otherwise resume: the highest DIR/N.EXT with N <= NUM_ITERS is the
#     last finished iteration (raising NUM_ITERS, where CONFIG leaves it
#     out, continues from there); only later iterations are run.
# Each iteration runs em_acc's command as $nj jobs (DIR/log/acc.X.JOB.log),
# then em_est's (DIR/log/EST_LOG.X.log), deletes the accumulators and logs
# the objective and job 1's throughput.
#
# Helpers (the hooks use them; extract_ivectors.sh uses em_data):
#   em_data DATA            check DATA, cap $nj at its speakers, BLAS threads
#   em_jobs NAME WHAT CMD   CMD as $nj jobs, logs DIR/log/NAME.JOB.log
#   em_run NAME WHAT CMD    CMD once, log DIR/log/NAME.log
#   em_missing NAME         a per-job file DIR/NAME.N.npz is missing
#   em_copy SRCDIR FILE...  copy files of SRCDIR into DIR
#
# The functions read the step's standard options $cmd, $nj, $num_threads,
# $force and $cmdline (the step's command line, kept in DIR/log/cmdline).

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "Usage: . steps/ivector/em_lib.sh   (a library: source it after utils/lib.sh, do not run it)" >&2
  echo "e.g.: . utils/lib.sh; . steps/ivector/em_lib.sh; em_data \"\$data\"; em_begin \"\$dir\" dubm '%s.JOB.acc' ..." >&2
  [ "${1:-}" = --help ] && exit 0
  exit 1
fi

# em_data DATA: the data dir a step reads: require its feats.scp, cmvn.scp,
# utt2spk and spk2utt, lower $nj to its number of speakers if that is
# smaller (jobs split it by speaker), and give each job $num_threads BLAS
# threads (the jobs run in parallel).
em_data() {
  local nspk
  require_files "$1/feats.scp" "$1/cmvn.scp" "$1/utt2spk" "$1/spk2utt"
  nspk=$(wc -l < "$1/spk2utt")
  [ "$nj" -gt "$nspk" ] && nj=$nspk
  export OMP_NUM_THREADS=$num_threads OPENBLAS_NUM_THREADS=$num_threads MKL_NUM_THREADS=$num_threads
}

# em_jobs NAME WHAT CMD...: run CMD as $nj jobs (JOB=1:$nj), logs
# $em_dir/log/NAME.JOB.log; on failure die naming WHAT and the logs.
em_jobs() {
  local name=$1 what=$2
  shift 2
  $cmd --num-threads "$num_threads" JOB=1:"$nj" "$em_dir/log/$name.JOB.log" "$@" \
    || die_log "$em_dir/log/$name.*.log" "$what failed"
}

# em_run NAME WHAT CMD...: run CMD once, log $em_dir/log/NAME.log; on
# failure die naming WHAT and the log.
em_run() {
  local name=$1 what=$2
  shift 2
  $cmd "$em_dir/log/$name.log" "$@" || die_log "$em_dir/log/$name.log" "$what failed"
}

# em_missing NAME: succeed if one of the per-job files $em_dir/NAME.N.npz
# (N = 1..$nj) is missing.
em_missing() {
  local n
  for n in $(seq "$nj"); do [ -f "$em_dir/$1.$n.npz" ] || return 0; done
  return 1
}

# em_copy SRCDIR FILE...: copy SRCDIR/FILE into $em_dir (links followed),
# each through a temporary name.
em_copy() {
  local src=$1 f
  shift
  for f in "$@"; do
    cp -L "$src/$f" "$em_dir/$f.tmp"
    atomic_mv "$em_dir/$f.tmp" "$em_dir/$f"
  done
}

# _em_acc_name X JOB: the accumulator of iteration X and job JOB, in $em_dir.
_em_acc_name() {
  local name
  # shellcheck disable=SC2059  # the format is the step's ACC argument
  name=$(printf "$em_acc_fmt" "$1")
  echo "${name//JOB/$2}"
}

# em_begin DIR EXT ACC NUM_ITERS WHAT CHANGED CONFIG INPUT...: see the top.
em_begin() {
  em_dir=$1 em_ext=$2 em_acc_fmt=$3 em_num_iters=$4 em_what=$5
  local changed=$6 config=$7 accs
  shift 7
  if [ "$force" = false ] && done_marker_ok "$em_dir" train && [ -f "$em_dir/final.$em_ext" ] &&
     [ "$(readlink "$em_dir/final.$em_ext")" = "$em_num_iters.$em_ext" ] &&
     config_fresh "$em_dir" "$config" "$@"; then
    log "$em_dir: $em_what already trained; skipping (--force true to redo)"
    exit 0
  fi
  mkdir -p "$em_dir/log"
  if [ "$force" = true ] || ! config_fresh "$em_dir" "$config" "$@"; then
    [ "$force" = false ] && [ -f "$em_dir/config" ] && log "$em_dir: $changed changed since the last run; starting again"
    accs=$(_em_acc_name '[0-9]*' '[0-9]*')
    # shellcheck disable=SC2086  # $accs is a glob
    rm -f "$em_dir"/[0-9]*."$em_ext" "$em_dir/final.$em_ext" "$em_dir"/$accs "$em_dir"/*.[0-9]*.npz \
      "$em_dir/objf" "$em_dir/.train.done" "$em_dir/config"
    if declare -F em_restart > /dev/null; then em_restart; fi
    write_config "$em_dir" "$config"
  else
    log "$em_dir: resuming"
  fi
  rm -f "$em_dir/.train.done"
  printf '%s\n' "$cmdline" > "$em_dir/log/cmdline"
  em_start=$(date +%s)
}

# em_train DATA EST_LOG EST_WHAT CLEANUP: see the top.
em_train() {
  local data=$1 est_log=$2 est_what=$3 cleanup=$4 x=-1 n f next accs
  utils/split_data.sh "$data" "$nj"
  sdata=$data/split$nj
  # The last finished iteration: the highest N.EXT with N <= NUM_ITERS.
  for f in "$em_dir"/[0-9]*."$em_ext"; do
    [ -e "$f" ] || continue
    n=$(basename "$f" ."$em_ext")
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -le "$em_num_iters" ] && [ "$n" -gt "$x" ] && x=$n
  done
  if [ "$x" -lt 0 ]; then
    em_init
    x=0
  elif [ "$x" -gt 0 ]; then
    log "$em_dir: resuming after iteration $((x - 1)) (from $x.$em_ext)"
  fi
  if declare -F em_prepare > /dev/null; then em_prepare; fi

  for ((; x < em_num_iters; x++)); do
    next=$((x + 1))
    accs=()
    for n in $(seq "$nj"); do accs+=("$em_dir/$(_em_acc_name "$x" "$n")"); done
    rm -f "${accs[@]}"
    em_acc "$x" "$em_dir/$(_em_acc_name "$x" JOB)"
    em_jobs "acc.$x" accumulation "${em_cmd[@]}"
    em_est "$x"
    em_run "$est_log.$x" "$est_what" "${em_cmd[@]}" --iteration "$x" --objf-file "$em_dir/objf" \
      "$em_dir/$x.$em_ext" "$em_dir/$next.$em_ext" "${accs[@]}"
    rm -f "${accs[@]}"
    [ "$cleanup" = true ] && rm -f "$em_dir/$x.$em_ext"
    log "$(grep -h 'iteration .*: log-likelihood per frame' "$em_dir/log/$est_log.$x.log" | sed 's/.*INFO //');" \
      "job 1: $(grep -h 'frames/s' "$em_dir/log/acc.$x.1.log" | sed 's/.*INFO //')"
  done

  ln -sfn "$em_num_iters.$em_ext" "$em_dir/final.$em_ext"
  # Kaldi's text formats beside the .npz: <dir>/kaldi/final.{dubm,ubm,ie}
  em_run export_kaldi "writing the Kaldi copy of the model" python3 -m mtlasr.bin.export_kaldi "$em_dir"
  mark_done "$em_dir" train
  log "$em_dir: $em_what trained in $(( $(date +%s) - em_start )) s (objective per iteration: $em_dir/objf)"
}
