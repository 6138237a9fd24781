#!/usr/bin/env bash
# Create the project's virtual environment (.venv) and install the pinned
# requirements into it. path.sh activates it. Safe to rerun.
set -euo pipefail

python=python3
help_message="Usage: $0 [--python python3]
e.g.: $0 && ./run.sh"

root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
. "$root/utils/lib.sh"
cd "$root"
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
log "installing requirements.txt into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python - <<'PY'
import kaldi_hmm_gmm, kaldifst, kaldi_native_fbank, kaldiio, torch, soundfile
print("setup OK: torch", torch.__version__, "kaldi-hmm-gmm", kaldi_hmm_gmm.__version__)
PY
