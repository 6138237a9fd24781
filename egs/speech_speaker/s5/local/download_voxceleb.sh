#!/usr/bin/env bash
# VoxCeleb1/2: say where to get the audio (it needs registration), download
# the public VoxCeleb1 trial lists, and check the trees that are there.
set -euo pipefail

vox1=
vox2=
trials=O,E,H
url_base=https://www.robots.ox.ac.uk/~vgg/data/voxceleb/meta
download_trials=true
help_message="Usage: $0 [options] <dir>
e.g.: $0 db                       # lists into db/meta/, checks db/voxceleb1 and db/voxceleb2
      $0 --vox1 /corpora/voxceleb1 --vox2 /corpora/voxceleb2 db
      $0 --download-trials false --vox1 /corpora/voxceleb1 db    # only check
The VoxCeleb audio is distributed by the Oxford Visual Geometry Group only
after registration (https://www.robots.ox.ac.uk/~vgg/data/voxceleb/): this
script cannot fetch it; it prints where to get it and what layout to
unpack it into, downloads the public trial lists of VoxCeleb1 (--trials,
of O = veri_test2.txt (VoxCeleb1-O cleaned), E = list_test_all2.txt,
H = list_test_hard2.txt) into <dir>/meta/ (skipping those already there),
and checks the trees --vox1 (default <dir>/voxceleb1) and --vox2 (default
<dir>/voxceleb2): the number of speakers and clips found, against those of
the full corpora. Exits 1 when neither tree holds audio.
Then: local/voxceleb_data_prep.py --vox1 <vox1> --vox2 <vox2> \\
        --trials <dir>/meta/veri_test2.txt data"

# The toolkit's utils/, four levels up (the recipe need not be the working directory).
# shellcheck source=utils/lib.sh
. "$(dirname "$(readlink -f "$0")")/../../../../utils/lib.sh"
# shellcheck source=utils/parse_options.sh
. "$(dirname "$(readlink -f "$0")")/../../../../utils/parse_options.sh"
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
dir=$1
vox1=${vox1:-$dir/voxceleb1}
vox2=${vox2:-$dir/voxceleb2}

instructions() {
  cat >&2 <<EOF
How to get the VoxCeleb audio:
  1. Request access at https://www.robots.ox.ac.uk/~vgg/data/voxceleb/ (the
     VoxCeleb1 and VoxCeleb2 pages); the VGG group e-mails the download
     links and credentials.
  2. VoxCeleb1 (16 kHz WAV): download vox1_dev_wav (4 parts,
     vox1_dev_wav_parta{a,b,c,d}; concatenate them with
     'cat vox1_dev_wav_parta* > vox1_dev_wav.zip') and vox1_test_wav.zip,
     and unpack both into $vox1:
       $vox1/wav/id10001/<video>/00001.wav ...   (both zips hold wav/)
     or each into its own directory:
       $vox1/vox1_dev_wav/wav/id10001/...  and  $vox1/vox1_test_wav/wav/id10270/...
  3. VoxCeleb2 (AAC in .m4a): download vox2_dev_aac (parts
     vox2_dev_aac_parta{a..h}, concatenated the same way) and unpack into
     $vox2, giving
       $vox2/dev/aac/id00012/<video>/00001.m4a ...
     (its test part, vox2_test_aac.zip, into $vox2/test/ if wanted, giving
     $vox2/test/aac/...). Reading .m4a needs ffmpeg (Debian package ffmpeg).
  4. Check the trees: $0 --vox1 $vox1 --vox2 $vox2 $dir
EOF
}

# check_tree <name> <dir> <ext> <full speakers> <full clips> <layout dirs...>:
# count the speakers and clips of each layout directory found; 1 if none.
check_tree() {
  local name=$1 top=$2 ext=$3 full_spk=$4 full_clips=$5 found=false d nspk nclip tspk=0 tclip=0 where=
  shift 5
  for d in "$@"; do
    where="$where $top/$d/<speaker>/<video>/<clip>.$ext"
    [ -d "$top/$d" ] || continue
    found=true
    nspk=$(find "$top/$d" -mindepth 1 -maxdepth 1 -type d | wc -l)
    nclip=$(find "$top/$d" -mindepth 3 -maxdepth 3 -type f -name "*.$ext" | wc -l)
    log "$name: $top/$d: $nspk speakers, $nclip .$ext clips"
    tspk=$((tspk + nspk)) tclip=$((tclip + nclip))
  done
  if ! $found || [ "$tclip" -eq 0 ]; then
    log "$name: no audio in $top (looked for$where)"
    return 1
  fi
  if [ "$tspk" -ne "$full_spk" ] || [ "$tclip" -ne "$full_clips" ]; then
    log "$name: WARNING: $tspk speakers and $tclip clips; the full corpus has $full_spk and $full_clips" \
        "(a part missing, or an unpacking interrupted?)"
  else
    log "$name: complete ($tspk speakers, $tclip clips)"
  fi
}

IFS=, read -r -a lists <<< "$trials"
if [ "$download_trials" = true ]; then
  if command -v wget >/dev/null; then
    fetch() { wget -q -O "$2" "$1"; }
  elif command -v curl >/dev/null; then
    fetch() { curl -fsSL -o "$2" "$1"; }
  else
    die "neither wget nor curl is installed (or give --download-trials false)"
  fi
  mkdir -p "$dir/meta"
  for t in "${lists[@]}"; do
    case "$t" in
      O) f=veri_test2.txt ;;
      E) f=list_test_all2.txt ;;
      H) f=list_test_hard2.txt ;;
      *) die "--trials: unknown list '$t' (O, E or H)" ;;
    esac
    if [ -s "$dir/meta/$f" ]; then
      log "$dir/meta/$f: already here"
      continue
    fi
    rc=0
    fetch "$url_base/$f" "$dir/meta/$f.tmp" || rc=$?
    if [ "$rc" -ne 0 ]; then
      rm -f "$dir/meta/$f.tmp"
      die "download of $url_base/$f failed (exit code $rc); fetch it by hand into $dir/meta/$f"
    fi
    # a trial list: lines '<1|0> <speaker>/<video>/<clip>.wav <speaker>/<video>/<clip>.wav'
    if ! awk 'NF != 3 || ($1 != 0 && $1 != 1) { bad = 1; exit } END { exit bad || NR == 0 }' "$dir/meta/$f.tmp"; then
      rm -f "$dir/meta/$f.tmp"
      die "$url_base/$f is not a trial list (an error page?); fetch it by hand into $dir/meta/$f"
    fi
    mv "$dir/meta/$f.tmp" "$dir/meta/$f"
    log "$dir/meta/$f: $(wc -l < "$dir/meta/$f") trials"
  done
fi

missing=0
check_tree VoxCeleb1 "$vox1" wav 1251 153516 wav vox1_dev_wav/wav vox1_test_wav/wav || missing=$((missing + 1))
check_tree VoxCeleb2 "$vox2" m4a 5994 1092009 dev/aac || missing=$((missing + 1))
if [ "$missing" -eq 2 ]; then
  instructions
  die "no VoxCeleb audio in $vox1 or $vox2 (see above)"
fi
log "VoxCeleb checked. Then: local/voxceleb_data_prep.py --vox1 $vox1 --vox2 $vox2" \
    "--trials $dir/meta/veri_test2.txt data"
