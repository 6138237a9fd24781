#!/usr/bin/env bash
# Install the Debian packages some recipes need (run as root, once per machine):
#   espeak-ng, sox, fortunes, fortunes-de, fortunes-es, fortunes-it:
#       egs/multiling_espeak/s5 synthesises its corpus with them
#   ffmpeg: egs/wsj/s5 decodes WSJ's shorten-compressed .wv1 files with it
#   the shell linter (package shellcheck): tests/test_utils_shell.py
#   slurm-wlm, munge: tests/test_slurm_cluster.py runs utils/slurm.sh on a
#       single-node cluster it starts (its own munged, slurmctld, slurmd)
# Packages already installed are left as they are.
set -euo pipefail

packages="espeak-ng sox fortunes fortunes-de fortunes-es fortunes-it ffmpeg shellcheck slurm-wlm munge"
help_message="Usage: $0 [--packages 'p1 p2 ...']
e.g.: sudo $0"

root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
. "$root/utils/lib.sh"
. "$root/utils/parse_options.sh"
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

missing=()
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "Debian packages present: $packages"
  exit 0
fi
command -v apt-get > /dev/null || die "no apt-get here: install ${missing[*]} with this system's package manager"
[ "$(id -u)" = 0 ] || die "installing ${missing[*]} needs root: sudo $0"
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${missing[@]}" > /dev/null ||
  { apt-get update -q > /dev/null && apt-get install -y -q "${missing[@]}" > /dev/null; }
log "installed ${missing[*]}"
