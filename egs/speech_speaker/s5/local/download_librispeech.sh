#!/usr/bin/env bash
# Download LibriSpeech subsets from OpenSLR (resource 12, CC BY 4.0) and
# unpack them into <dir>/LibriSpeech/<subset>/, the layout that
# local/librispeech_data_prep.py reads. A subset whose
# <dir>/LibriSpeech/<subset>/.complete marker exists is skipped; an
# interrupted download is resumed (wget -c, or curl -C -).
set -euo pipefail

subsets=train-clean-100,dev-clean,test-clean
url_base=https://www.openslr.org/resources/12
md5_file=
remove_archive=false
help_message="Usage: $0 [options] <dir>
e.g.: $0 db                                  # db/LibriSpeech/{train-clean-100,dev-clean,test-clean}
      $0 --subsets dev-other,test-other db
      $0 --url-base https://us.openslr.org/resources/12 --remove-archive true db
Downloads <subset>.tar.gz from --url-base for each subset of --subsets
(comma-separated, of train-clean-100 train-clean-360 train-other-500
dev-clean dev-other test-clean test-other), unpacks it into <dir> and
marks it complete with <dir>/LibriSpeech/<subset>/.complete. With
--md5-file FILE (lines '<md5> <subset>.tar.gz', as on the OpenSLR page)
each archive is checked before it is unpacked. Needs wget or curl, and tar.
Then: local/librispeech_data_prep.py --root <dir> --sets <subsets> data"

# The toolkit's utils/, four levels up (the recipe need not be the working directory).
# shellcheck source=utils/lib.sh
. "$(dirname "$(readlink -f "$0")")/../../../../utils/lib.sh"
# shellcheck source=utils/parse_options.sh
. "$(dirname "$(readlink -f "$0")")/../../../../utils/parse_options.sh"
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
dir=$1

known=" train-clean-100 train-clean-360 train-other-500 dev-clean dev-other test-clean test-other "
IFS=, read -r -a wanted <<< "$subsets"
[ ${#wanted[@]} -gt 0 ] || die "--subsets: no subset given"
for s in "${wanted[@]}"; do
  [[ $known == *" $s "* ]] || die "--subsets: unknown subset '$s'; known:${known% }"
done
[ -z "$md5_file" ] || [ -f "$md5_file" ] || die "--md5-file $md5_file: no such file"
command -v tar >/dev/null || die "tar is not installed"
if command -v wget >/dev/null; then
  fetch() { wget -c --progress=dot:giga -O "$2" "$1"; }
elif command -v curl >/dev/null; then
  fetch() { curl -fL -C - -o "$2" "$1"; }
else
  die "neither wget nor curl is installed"
fi

mkdir -p "$dir"
for s in "${wanted[@]}"; do
  if [ -f "$dir/LibriSpeech/$s/.complete" ]; then
    log "$dir/LibriSpeech/$s: already here (.complete), skipped"
    continue
  fi
  archive=$dir/$s.tar.gz
  if [ ! -f "$archive" ]; then
    log "downloading $url_base/$s.tar.gz"
    rc=0
    fetch "$url_base/$s.tar.gz" "$archive.part" || rc=$?
    [ "$rc" -eq 0 ] || die "download of $url_base/$s.tar.gz failed (exit code $rc); run again to resume" \
                           "($archive.part is kept), or try a mirror with --url-base"
    mv "$archive.part" "$archive"
  fi
  if [ -n "$md5_file" ]; then
    want=$(awk -v f="$s.tar.gz" '$2 == f || $2 == "*" f { print $1; exit }' "$md5_file")
    [ -n "$want" ] || die "$md5_file: no md5 sum for $s.tar.gz"
    have=$(md5sum "$archive" | cut -d' ' -f1)
    if [ "$have" != "$want" ]; then
      mv "$archive" "$archive.bad"
      die "$archive: md5 $have, expected $want (from $md5_file); moved to $archive.bad, run again to download it anew"
    fi
  fi
  log "unpacking $archive into $dir"
  tar -xzf "$archive" -C "$dir" || die "$archive: tar failed (a damaged download? remove it and run again)"
  [ -d "$dir/LibriSpeech/$s" ] || die "$archive did not hold LibriSpeech/$s"
  touch "$dir/LibriSpeech/$s/.complete"
  if [ "$remove_archive" = true ]; then rm -f "$archive"; fi
  log "$dir/LibriSpeech/$s: complete"
done
log "LibriSpeech $subsets in $dir/LibriSpeech"
