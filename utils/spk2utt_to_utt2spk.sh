#!/usr/bin/env bash
# Convert "spk utt1 utt2 ..." lines into "utt spk" lines.
set -euo pipefail

if [ "${1:-}" = --help ] || [ $# -gt 1 ]; then
  echo "Usage: $0 [<spk2utt>]  > utt2spk   (reads stdin when no file is given)" >&2
  echo "e.g.: $0 data/train/spk2utt > data/train/utt2spk" >&2
  [ "${1:-}" = --help ] && exit 0
  exit 1
fi

awk '
  NF < 2 { printf("spk2utt_to_utt2spk.sh: bad line %d: %s\n", NR, $0) > "/dev/stderr"; exit 1 }
  { for (i = 2; i <= NF; i++) print $i, $1 }' "${1:--}" |
  LC_ALL=C sort -k1,1
