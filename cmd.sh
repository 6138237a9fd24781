# shellcheck shell=bash
# Job runners used by every `$cmd JOB=1:$nj log/x.JOB.log ...` call.
# Local parallel jobs by default; on a Slurm cluster, set MTL_CMD=slurm
# (extra sbatch/srun options go in SLURM_EXTRA_OPTS), or edit an uncommitted
# copy of this file. Site names and paths never belong in this file.
case "${MTL_CMD:-local}" in
  slurm)
    export train_cmd="utils/slurm.sh --mem 4G"
    export decode_cmd="utils/slurm.sh --mem 4G"
    export cuda_cmd="utils/slurm.sh --mem 16G --gpu 1"
    ;;
  local)
    export train_cmd="utils/run_local.sh"
    export decode_cmd="utils/run_local.sh"
    export cuda_cmd="utils/run_local.sh"
    ;;
  *) echo "cmd.sh: unknown MTL_CMD='${MTL_CMD}' (use local or slurm)" >&2; return 1 ;;
esac
