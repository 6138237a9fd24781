#!/usr/bin/env bash
# Convert "utt spk" lines into "spk utt1 utt2 ..." lines.
set -euo pipefail

if [ "${1:-}" = --help ] || [ $# -gt 1 ]; then
  echo "Usage: $0 [<utt2spk>]  > spk2utt   (reads stdin when no file is given)" >&2
  echo "e.g.: $0 data/train/utt2spk > data/train/spk2utt" >&2
  [ "${1:-}" = --help ] && exit 0
  exit 1
fi

# Utterances of a speaker are listed in sorted order; speakers are sorted.
LC_ALL=C sort -k1,1 "${1:--}" |
  awk '
    NF != 2 { printf("utt2spk_to_spk2utt.sh: bad line: %s\n", $0) > "/dev/stderr"; bad = 1; exit 1 }
    !($2 in utts) { order[++n] = $2; utts[$2] = $1; next }
    { utts[$2] = utts[$2] " " $1 }
    END { if (!bad) for (i = 1; i <= n; i++) print order[i], utts[order[i]] }' |
  LC_ALL=C sort -k1,1
