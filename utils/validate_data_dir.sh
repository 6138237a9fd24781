#!/usr/bin/env bash
# Check that a data directory is well formed; exit 1 at the first problem.
set -euo pipefail

help_message="Usage: $0 [--no-text] [--no-feats] [--no-wav] <data-dir>
e.g.: $0 --no-feats data/train
Requires utt2spk, spk2utt, text, feats.scp and wav.scp (the flags make the
named file optional; a file that is present is always checked).  Every file
must be sorted on its first field (LC_ALL=C) with unique keys; spk2utt must
match utt2spk; each speaker id must prefix its utterance ids; text,
feats.scp, wav.scp (or segments) and utt2* must cover exactly the utterances
of utt2spk; no transcript may be empty; cmvn.scp must cover exactly the
speakers; spk2gender values must be m or f."
no_text=false no_feats=false no_wav=false

# shellcheck source=utils/lib.sh
. "$(dirname "$0")/lib.sh"

# The options are value-less flags, so parse_options.sh is not used.
while [ $# -gt 0 ]; do
  case "$1" in
    --no-text) no_text=true; shift ;;
    --no-feats) no_feats=true; shift ;;
    --no-wav) no_wav=true; shift ;;
    --help|-h) echo "$help_message" >&2; exit 0 ;;
    --*) die "unknown option $1" ;;
    *) break ;;
  esac
done
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
data=${1%/}
export LC_ALL=C

[ -d "$data" ] || die "no such directory $data"
[ -s "$data/utt2spk" ] || die "$data/utt2spk is missing or empty"
require_files "$data/spk2utt"
$no_text || require_files "$data/text"
$no_feats || require_files "$data/feats.scp"
$no_wav || require_files "$data/wav.scp"

# Every table present: sorted, unique keys, and (except text, checked
# below) at least a key and a value on each line.
for path in "$data"/*; do
  [ -f "$path" ] || continue
  f=$(basename "$path")
  case "$f" in
    utt2*|spk2*|reco2*|text|wav.scp|feats.scp|cmvn.scp|segments|vad.scp) ;;
    *) continue ;;
  esac
  [ -s "$path" ] || die "$path is empty"
  sort -c -s -k1,1 "$path" 2>/dev/null || die "$path is not sorted (LC_ALL=C sort -k1,1)"
  dup=$(awk '{ print $1 }' "$path" | uniq -d | awk 'NR == 1')
  [ -z "$dup" ] || die "$path has key '$dup' more than once"
  if [ "$f" != text ]; then
    bad=$(awk 'NF < 2 { print NR; exit }' "$path")
    [ -z "$bad" ] || die "$path: line $bad has fewer than two fields"
  fi
done

bad=$(awk 'NF != 2 { print NR; exit }' "$data/utt2spk")
[ -z "$bad" ] || die "$data/utt2spk: line $bad does not have exactly two fields"
bad=$(awk 'index($1, $2) != 1 { print $1; exit }' "$data/utt2spk")
[ -z "$bad" ] ||
  die "speaker of utterance $bad is not a prefix of the utterance id ($data/utt2spk)"
"$(dirname "$0")/spk2utt_to_utt2spk.sh" "$data/spk2utt" |
  cmp -s - <(awk '{ print $1, $2 }' "$data/utt2spk") ||
  die "$data/spk2utt does not match $data/utt2spk (regenerate it with utils/utt2spk_to_spk2utt.sh)"

# same_keys REF FILE WHAT: die naming the first key that is in only one of
# the two files (both are already known to be sorted and unique).
same_keys() {
  local diff
  diff=$(comm -3 <(awk '{ print $1 }' "$1") <(awk '{ print $1 }' "$2") | awk 'NR == 1')
  [ -z "$diff" ] && return 0
  if [[ $diff == $'\t'* ]]; then
    die "$3 ${diff#$'\t'} is in $2 but not in $1"
  else
    die "$3 $diff is in $1 but not in $2"
  fi
}

for path in "$data"/utt2* "$data/text" "$data/feats.scp" "$data/segments" "$data/vad.scp"; do
  [ -f "$path" ] && same_keys "$data/utt2spk" "$path" utterance
done
if [ -f "$data/segments" ]; then
  if [ -f "$data/wav.scp" ]; then
    bad=$(awk 'NR == FNR { reco[$1]; next } !($2 in reco) { print $1, $2; exit }' \
      "$data/wav.scp" "$data/segments")
    [ -z "$bad" ] || die "segment ${bad% *} refers to recording ${bad#* } that is not in $data/wav.scp"
  fi
elif [ -f "$data/wav.scp" ]; then
  same_keys "$data/utt2spk" "$data/wav.scp" utterance
fi

if [ -f "$data/text" ]; then
  bad=$(awk 'NF < 2 { print $1; exit }' "$data/text")
  [ -z "$bad" ] || die "utterance $bad has an empty transcript in $data/text"
fi

[ -f "$data/cmvn.scp" ] && same_keys "$data/spk2utt" "$data/cmvn.scp" speaker
if [ -f "$data/spk2gender" ]; then
  same_keys "$data/spk2utt" "$data/spk2gender" speaker
  bad=$(awk '$2 != "m" && $2 != "f" || NF != 2 { print $1; exit }' "$data/spk2gender")
  [ -z "$bad" ] || die "speaker $bad: gender in $data/spk2gender must be m or f"
fi

echo "Successfully validated data-directory $data"
