#!/usr/bin/env bash
# Print one setting of this recipe's corpus settings file, as run.sh chose it
# (stage 0 copies conf/sample.conf or conf/ldc.conf to data/local/recipe.conf),
# so that the table and benchmark scripts use what run.sh used without
# deciding sample-vs-full again.
set -euo pipefail
help_message="Usage: $0 <option-name>
e.g.: $0 nnet-config      # conf/lstm_sample.yaml on the sample"
[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
if [ $# -ne 1 ] || [ "$1" = --help ]; then echo "$help_message" >&2; [ "${1:-}" = --help ] && exit 0; exit 1; fi
conf=data/local/recipe.conf
require_files "$conf"
value=$(sed -n "s/^--$1=//p" "$conf" | tail -n 1)
[ -n "$value" ] || die "$conf has no --$1 (run.sh stage 0 writes it)"
echo "$value"
