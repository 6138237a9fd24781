# shellcheck shell=bash
# Sourced by run.sh and every step run from this recipe: the toolkit's
# environment (virtual environment, PYTHONPATH, PATH, LC_ALL=C) from the
# top-level path.sh, three directories up.
# shellcheck disable=SC1091
. "$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)/path.sh"
