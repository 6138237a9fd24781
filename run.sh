#!/usr/bin/env bash
# The one-line entry of the README: seed 000's TIMIT recipe,
# egs/timit/s5/run.sh, run in its directory (so data/, exp/ and mfcc/ are
# made under egs/timit/s5/). Every option is the recipe's; see
# ./run.sh --help. Option values that name an existing file or directory
# relative to where this is called from (e.g. --timit ../TIMIT) are made
# absolute first; others (e.g. --nnet-config conf/lstm.yaml) are the
# recipe's own relative paths.
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
recipe=$root/egs/timit/s5
args=()
for a in "$@"; do
  if [[ $a == --*=* ]]; then
    v=${a#*=}
    if [[ $v != /* ]] && [ -n "$v" ] && [ -e "$v" ]; then a="${a%%=*}=$(readlink -f "$v")"; fi
  elif [[ $a != -* && $a != /* ]] && [ -e "$a" ]; then
    a=$(readlink -f "$a")
  fi
  args+=("$a")
done
cd "$recipe"
echo "$(date '+%Y-%m-%d %H:%M:%S') (run.sh) running egs/timit/s5/run.sh in $recipe" >&2
exec ./run.sh "${args[@]}"
