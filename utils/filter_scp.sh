#!/usr/bin/env bash
# Keep the lines of a table whose first field is listed in an id list.
set -euo pipefail

usage="Usage: $0 [--exclude] <id-list> <scp>   (writes to stdout)
e.g.: $0 data/dev/utt2spk exp/make_mfcc/raw.scp > data/dev/feats.scp
Prints the lines of <scp> whose first field is (with --exclude: is not) the
first field of some line of <id-list>, in the order of <scp>.  Either file
may be - for stdin."
exclude=false
case "${1:-}" in
  --help|-h) echo "$usage" >&2; exit 0 ;;
  --exclude) exclude=true; shift ;;
esac
if [ $# -ne 2 ]; then echo "$usage" >&2; exit 1; fi
[ "$1" = - ] || [ -r "$1" ] || { echo "$0: no such file $1" >&2; exit 1; }
[ "$2" = - ] || [ -r "$2" ] || { echo "$0: no such file $2" >&2; exit 1; }

[ "$1" != - ] || [ "$2" != - ] || { echo "$0: only one file can be stdin" >&2; exit 1; }

# "pass" tells the files apart (NR == FNR would misfire on an empty id list);
# blank lines of <scp> are dropped.
awk -v exclude="$exclude" '
  pass == 1 { if (NF) ids[$1]; next }
  NF && (($1 in ids) != (exclude == "true"))' pass=1 "$1" pass=2 "$2"
