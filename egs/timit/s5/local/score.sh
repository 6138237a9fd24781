#!/usr/bin/env bash
# TIMIT phone error rate of a decode dir: steps/score.sh with the hypotheses
# and references folded 48 -> 39 phones (the map stage 1 writes from
# conf/phones.60-48-39.map), sil scored as a token. Every option of
# steps/score.sh passes through (e.g. --lmwt-from <dev-decode-dir>).
set -euo pipefail

score_map=data/local/phones.48-39.map
if [ $# -lt 2 ] || [ "${1:-}" = --help ]; then
  echo "Usage: $0 [steps/score.sh options] <data-dir> <decode-dir>
e.g.: $0 data/dev exp/lstm/decode_dev
      $0 --lmwt-from exp/lstm/decode_dev data/test exp/lstm/decode_test" >&2
  [ "${1:-}" = --help ] && exit 0
  exit 1
fi
exec steps/score.sh --metric per --token-map "$score_map" "$@"
