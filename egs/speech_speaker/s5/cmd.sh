# shellcheck shell=bash
# Job runners of this recipe (every `$cmd JOB=1:$nj log/x.JOB.log ...`):
# the toolkit's defaults (MTL_CMD=local or MTL_CMD=slurm). To run this
# recipe differently, set train_cmd / decode_cmd / cuda_cmd after this line
# in an uncommitted copy; site names and paths never belong in this file.
# shellcheck disable=SC1091
. "$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)/cmd.sh"
