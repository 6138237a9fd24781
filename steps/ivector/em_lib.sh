#!/usr/bin/env bash
# shellcheck disable=SC2154,SC2034  # reads and sets the variables of the step that sources it (nj, cmd, force, sdata, ...)
# The EM driver of steps/ivector/train_diag_ubm.sh, train_full_ubm.sh and
# train_ivector_extractor.sh, and the job helpers they share with
# extract_ivectors.sh. Source it after utils/lib.sh (it uses log, die,
# atomic_mv, step_record, step_fresh, step_done and replace_dir):
#   . utils/lib.sh
#   . steps/ivector/em_lib.sh
# It only defines functions; it does not change shell options.
#
# A step trains the models N.EXT, the model after N EM iterations
# (N = 0 .. NUM_ITERS), in the staging dir DIR.next, links final.EXT ->
# NUM_ITERS.EXT, and when finished moves DIR.next into the place of DIR:
#
#   em_begin DIR EXT ACC NUM_ITERS WHAT CHANGED CONFIG INPUT...
#       Skip, start again or resume (see below); sets $dir and $em_dir to
#       DIR.next, where the hooks work. ACC names the accumulator of
#       iteration X and job JOB: a printf format whose %s is X, with the
#       word JOB in it ('%s.JOB.acc' gives 3.2.acc). WHAT names the model
#       in the log ("diagonal UBM"), CHANGED what a restart blames
#       ("options or features"), CONFIG is the step's options (without
#       NUM_ITERS), INPUT... its input files.
#   em_train DATA EST_LOG EST_WHAT CLEANUP
#       The iterations on DATA, split into $nj parts by speaker (the hooks
#       find the parts in $sdata/JOB). EST_LOG names the estimation log
#       (log/EST_LOG.X.log), EST_WHAT the estimation in an error. With
#       CLEANUP true only the latest N.EXT is kept. At the end DIR.next
#       replaces DIR, and $dir is DIR again.
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
#   * DIR/.train.record (mtlasr.provenance: the code, CONFIG, NUM_ITERS and
#     each INPUT's checksum) matches: log "DIR: WHAT already trained ...;
#     skipping" and exit 0 (the step ends there);
#   * DIR.next was started from the same CONFIG and INPUTs (its
#     .work.record): resume there, at the highest N.EXT with N <= NUM_ITERS;
#   * DIR was finished from the same CONFIG and INPUTs but other NUM_ITERS
#     (where CONFIG leaves NUM_ITERS out, as the extractor's does): DIR.next
#     starts as a copy of DIR and continues from its last iteration;
#   * otherwise, or with --force true: DIR.next starts empty, em_restart
#     fills in the step's own files, and the training starts from em_init.
#     DIR keeps the finished model until the new one replaces it.
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
  em_final=$1 em_ext=$2 em_acc_fmt=$3 em_num_iters=$4 em_what=$5
  local changed=$6 config=$7 accs work
  shift 7
  em_record=$(step_record "$config num_iters=$em_num_iters" "$@")
  if [ "$force" = false ] && [ -f "$em_final/final.$em_ext" ] && step_fresh "$em_final" train "$em_record"; then
    log "$em_final: $em_what already trained from these inputs and options; skipping (--force true to redo)"
    exit 0
  fi
  # The training runs in DIR.next; the finished model replaces DIR at the end.
  em_dir=$em_final.next dir=$em_final.next
  work=$(step_record "$config" "$@")   # what the iterations depend on (not how many there are)
  if [ "$force" = false ] && [ -d "$em_dir" ] && [ "$(cat "$em_dir/.work.record" 2> /dev/null)" = "$work" ]; then
    log "$em_final: resuming in $em_dir"
  elif [ "$force" = false ] && [ -d "$em_final" ] && [ "$(cat "$em_final/.work.record" 2> /dev/null)" = "$work" ]; then
    log "$em_final: continuing the finished model in $em_dir ($em_num_iters iterations asked for)"
    rm -rf "$em_dir"
    cp -a "$em_final" "$em_dir"
    rm -f "$em_dir/.train.record" "$em_dir/final.$em_ext"
  else
    [ "$force" = false ] && [ -d "$em_final" ] && log "$em_final: $changed changed since the last run; starting again in $em_dir"
    rm -rf "$em_dir"
    mkdir -p "$em_dir/log"
    if declare -F em_restart > /dev/null; then em_restart; fi
    printf '%s\n' "$work" > "$em_dir/.work.record"
  fi
  accs=$(_em_acc_name '[0-9]*' '[0-9]*')
  # shellcheck disable=SC2086  # $accs is a glob
  rm -f "$em_dir"/$accs "$em_dir/.train.done"   # a killed iteration's partial accumulators
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
  step_done "$em_dir" train "$em_record"
  replace_dir "$em_dir" "$em_final"
  em_dir=$em_final dir=$em_final
  log "$em_dir: $em_what trained in $(( $(date +%s) - em_start )) s (objective per iteration: $em_dir/objf)"
}
