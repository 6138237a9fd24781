#!/usr/bin/env bash
# Download the NLTK TIMIT sample (160 utterances, CC BY-NC-SA) into <dir>/timit
# and check it: 16 speaker folders, 160 .wav and 160 .phn files.
set -euo pipefail

url=https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/timit.zip
help_message="Usage: $0 [--url URL] <dir>
e.g.: $0 db      # gives db/timit/dr1-fvmh0/sa1.wav ..."

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
dir=$1

check() {  # check <timit-dir>: the sample's shape
  local d=$1 nspk nwav nphn
  nspk=$(find "$d" -mindepth 1 -maxdepth 1 -type d -name 'dr[1-8]-*' | wc -l)
  nwav=$(find "$d" -name '*.wav' | wc -l)
  nphn=$(find "$d" -name '*.phn' | wc -l)
  if [ "$nspk" -ne 16 ] || [ "$nwav" -ne 160 ] || [ "$nphn" -ne 160 ]; then
    log "$d: expected 16 speakers, 160 wav, 160 phn; found $nspk, $nwav, $nphn"
    return 1
  fi
}

if [ -d "$dir/timit" ] && check "$dir/timit"; then
  log "$dir/timit: the TIMIT sample is already here"
  exit 0
fi
mkdir -p "$dir"
log "downloading $url"
rc=0
if command -v wget >/dev/null; then
  wget -q -O "$dir/timit.zip.tmp" "$url" || rc=$?
else
  curl -fsSL -o "$dir/timit.zip.tmp" "$url" || rc=$?
fi
if [ "$rc" -ne 0 ]; then
  rm -f "$dir/timit.zip.tmp"
  die "download of $url failed (exit code $rc). Without network, give the corpus with" \
      "./run.sh --timit DIR (the NLTK sample dir or the LDC TIMIT/), or put the sample at" \
      "../shared/data/timit_sample beside the checkout"
fi
mv "$dir/timit.zip.tmp" "$dir/timit.zip"
rm -rf "$dir/timit.tmp"
mkdir -p "$dir/timit.tmp"
python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$dir/timit.zip" "$dir/timit.tmp"
src=$(dirname "$(find "$dir/timit.tmp" -type d -name 'dr1-fvmh0' | head -n 1)")
if [ -z "$src" ] || [ "$src" = . ]; then
  die "$dir/timit.zip does not contain the TIMIT sample layout"
fi
check "$src" || die "$dir/timit.zip: the sample is incomplete"
rm -rf "$dir/timit"
mv "$src" "$dir/timit"
rm -rf "$dir/timit.tmp"
log "TIMIT sample in $dir/timit"
