# shellcheck shell=bash
# Sourced by run.sh and every step: environment for the toolkit.
# MTL_ROOT is the toolkit's top directory (where this file lives).
MTL_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
export MTL_ROOT
# The project's virtual environment, made by `utils/setup.sh`, if present.
if [ -z "${MTL_NO_VENV:-}" ] && [ -f "$MTL_ROOT/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$MTL_ROOT/.venv/bin/activate"
fi
export PYTHONPATH="$MTL_ROOT/steps/libs${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$MTL_ROOT/utils:$PATH"
export LC_ALL=C
export PYTHONUNBUFFERED=1
