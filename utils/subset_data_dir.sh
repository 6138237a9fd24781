#!/usr/bin/env bash
# Make a data directory that holds a subset of the utterances of another.
set -euo pipefail

seed=0
help_message="Usage: $0 [options] <src-data-dir> [<num-utt>] <dest-data-dir>
e.g.: $0 data/train 500 data/train_500
e.g.: $0 --spk-list conf/dev_spk.list data/train data/dev
Selects utterances of <src-data-dir> in exactly one of these ways:
  <num-utt>          num-utt utterances drawn at random (see --seed)
  --utt-list FILE    the utterances named by the first field of FILE's lines
  --spk-list FILE    all utterances of the speakers named likewise in FILE
  --first N          the first N utterances in sorted (LC_ALL=C) id order
  --last N           the last N utterances in sorted id order
  --per-spk N        the first N utterances (in sorted id order) of each
                     speaker; a speaker with fewer keeps all of them
  --shortest N       the N shortest utterances by utt2num_frames, or by
                     utt2dur when there is no utt2num_frames (ties: by id)
N may also be given as <num-utt> (Kaldi's form: --first data/train 100 out).
Options:
  --seed S           (default $seed) seed of the random selection, 0 to
                     2147483646.  The sorted utterance ids are shuffled by
                     Fisher-Yates driven by L'Ecuyer's combined generator
                     seeded from S, and the first <num-utt> are kept: the
                     subset depends only on S and the set of utterance ids
                     (not on file order, machine or awk), and for one seed a
                     smaller subset is part of a larger one.
A count larger than the source is an error; ids of a list that are not in
the source are warned about, and it is an error if none is.
Every per-utterance, per-recording and per-speaker file (wav.scp, text,
feats.scp, segments, vad.scp, utt2*, reco2*, cmvn.scp, spk2*) is filtered to
the chosen utterances, their speakers and recordings; spk2utt is made anew;
frame_shift is copied; other files are left out.  cmvn.scp keeps the lines
of the kept speakers: a speaker that lost some utterances gets a warning,
since its stats then need recomputing (steps/compute_cmvn_stats.sh).  The
result is validated with utils/validate_data_dir.sh, built in a temporary
folder and moved into place, replacing an earlier <dest-data-dir> as a whole
(which must be a data dir or empty).  <src-data-dir> is never modified."

# shellcheck source=utils/data_lib.sh
. "$(dirname "$0")/data_lib.sh"
export LC_ALL=C

# The mode options are flags that may or may not take a value, so
# parse_options.sh is not used.
mode="" count="" list=""
set_mode() {
  [ -z "$mode" ] || die "choose one selection mode: got --$mode and $1"
  mode=${1#--}
}
while [ $# -gt 0 ]; do
  case "$1" in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;  # --opt=v -> --opt v
  esac
  case "$1" in
    --help|-h) echo "$help_message" >&2; exit 0 ;;
    --seed)
      [ $# -ge 2 ] || die "option --seed needs a value"
      seed=$2; shift 2 ;;
    --utt-list|--spk-list)
      [ $# -ge 2 ] || die "option $1 needs a file"
      set_mode "$1"; list=$2; shift 2 ;;
    --first|--last|--per-spk|--shortest)
      set_mode "$1"
      if [[ ${2:-} =~ ^[0-9]+$ ]]; then count=$2; shift; fi
      shift ;;
    --) shift; break ;;
    --*) die "unknown option $1" ;;
    *) break ;;
  esac
done

case $# in
  3)
    case "$mode" in
      utt-list|spk-list) die "--$mode takes no <num-utt> (got '$2')" ;;
    esac
    [ -z "$count" ] || die "the count is given twice: --$mode $count and <num-utt> $2"
    count=$2
    [ -n "$mode" ] || mode=random ;;
  2)
    [ -n "$mode" ] || { echo "$help_message" >&2; exit 1; }
    case "$mode" in
      utt-list|spk-list) ;;
      *) [ -n "$count" ] || die "--$mode needs a count: --$mode N or <num-utt>" ;;
    esac ;;
  *) echo "$help_message" >&2; exit 1 ;;
esac
src=${1%/}
dest=${*: -1}
dest=${dest%/}
if [ -n "$count" ] && ! [[ $count =~ ^0*[1-9][0-9]{0,17}$ ]]; then
  die "the number of utterances must be a positive integer, got '$count'"
fi
if ! [[ $seed =~ ^[0-9]{1,10}$ ]] || [ "$seed" -gt 2147483646 ]; then
  die "--seed must be an integer from 0 to 2147483646, got '$seed'"
fi
[ "$mode" = random ] || [ "$seed" = 0 ] || log "WARNING: --seed only affects random selection; ignored with --$mode"

[ -z "$list" ] || require_files "$list"
data_begin "$dest" "$src"
w=$data_work

awk 'NF { print $1 }' "$src/utt2spk" | sort -u > "$w/all"
sort -s -k1,1 "$src/utt2spk" > "$w/utt2spk"
total=$(wc -l < "$w/all")
[ "$total" -gt 0 ] || die "$src/utt2spk is empty"
if [ -n "$count" ] && [ "$mode" != per-spk ] && [ "$count" -gt "$total" ]; then
  die "asked for $count utterances but $src has only $total"
fi

# from_list LIST KNOWN WHAT: the ids of LIST (first fields) that are in
# KNOWN, sorted and unique; warn about the others, die if none is known.
from_list() {
  local n_ids missing first
  awk 'NF { print $1 }' "$1" | awk '!seen[$0]++' > "$w/ids"
  n_ids=$(wc -l < "$w/ids")
  [ "$n_ids" -gt 0 ] || die "$1 lists no ids"
  "$data_utils/filter_scp.sh" --exclude "$2" "$w/ids" > "$w/missing"
  missing=$(wc -l < "$w/missing")
  [ "$missing" -lt "$n_ids" ] || die "none of the $n_ids ids in $1 is $3 of $src (first: $(head -n 1 "$w/ids"))"
  if [ "$missing" -gt 0 ]; then
    first=$(head -n 1 "$w/missing")
    log "WARNING: $missing of the $n_ids ids in $1 are not ${3#* }s of $src (first: $first); ignoring them"
  fi
  "$data_utils/filter_scp.sh" "$2" "$w/ids" | sort -u
}

case "$mode" in
  random)
    awk -v seed="$seed" -v n="$count" '
      # L'"'"'Ecuyer (1988) combined multiplicative generator: every product
      # stays below 2^53, so it is exact in any awk.  Returns [0, 1).
      function uniform(  z) {
        s1 = (40014 * s1) % 2147483563
        s2 = (40692 * s2) % 2147483399
        z = s1 - s2
        if (z < 1) z += 2147483562
        return (z - 1) / 2147483562
      }
      { id[NR] = $1 }
      END {
        s1 = seed % 2147483562 + 1
        s2 = (seed * 69069 + 12345) % 2147483398 + 1
        for (k = 0; k < 16; k++) uniform()
        for (i = 1; i <= n; i++) {      # partial Fisher-Yates shuffle
          j = i + int(uniform() * (NR - i + 1))
          t = id[i]; id[i] = id[j]; id[j] = t
          print id[i]
        }
      }' "$w/all" | sort > "$w/keep" ;;
  first) awk -v n="$count" 'NR <= n' "$w/all" > "$w/keep" ;;
  last) tail -n "$count" "$w/all" > "$w/keep" ;;
  per-spk)
    most=$(awk '{ if (++n[$2] > most) most = n[$2] } END { print most + 0 }' "$w/utt2spk")
    [ "$count" -le "$most" ] ||
      die "asked for $count utterances per speaker but the largest speaker of $src has only $most"
    short=$(awk -v n="$count" '{ c[$2]++ } END { for (s in c) if (c[s] < n) k++; print k + 0 }' "$w/utt2spk")
    [ "$short" -eq 0 ] || log "$short speakers have fewer than $count utterances; keeping all of theirs"
    awk -v n="$count" '++c[$2] <= n { print $1 }' "$w/utt2spk" > "$w/keep" ;;
  shortest)
    lengths=""
    for f in utt2num_frames utt2dur; do
      if [ -f "$src/$f" ]; then lengths=$src/$f; break; fi
    done
    [ -n "$lengths" ] ||
      die "--shortest needs utterance lengths, but $src has neither utt2num_frames nor utt2dur"
    bad=$("$data_utils/filter_scp.sh" --exclude "$lengths" "$w/all" | awk 'NR == 1')
    [ -z "$bad" ] || die "utterance $bad has no length in $lengths"
    "$data_utils/filter_scp.sh" "$w/all" "$lengths" | sort -s -k2,2g -k1,1 |
      awk -v n="$count" 'NR <= n { print $1 }' | sort > "$w/keep" ;;
  utt-list) from_list "$list" "$w/all" "an utterance" > "$w/keep" ;;
  spk-list)
    awk '{ print $2 }' "$w/utt2spk" | sort -u > "$w/spks"
    from_list "$list" "$w/spks" "a speaker" > "$w/keep_spks"
    awk 'NR == FNR { ok[$1]; next } ($2 in ok) { print $1 }' "$w/keep_spks" "$w/utt2spk" > "$w/keep" ;;
esac

# Per-utterance files first: the kept speakers and recordings follow from
# the filtered utt2spk and segments.
has_segments=false
[ -f "$src/segments" ] && has_segments=true
utt_files=() reco_files=() spk_files=() left_out=()
while read -r f; do
  case "$(data_file_kind "$f" "$has_segments")" in
    utt) utt_files+=("$f") ;;
    reco) reco_files+=("$f") ;;
    spk) spk_files+=("$f") ;;
    plain) cp "$src/$f" "$data_tmp/$f" ;;
    other) left_out+=("$f") ;;
  esac
done < <(data_files "$src")
for f in "${utt_files[@]}"; do data_keep "$w/keep" "$src/$f" "$data_tmp/$f"; done
if $has_segments; then
  awk '{ print $2 }' "$data_tmp/segments" | sort -u > "$w/recos"
  for f in "${reco_files[@]}"; do data_keep "$w/recos" "$src/$f" "$data_tmp/$f"; done
fi
awk '{ print $2 }' "$data_tmp/utt2spk" | sort -u > "$w/spks"
for f in "${spk_files[@]}"; do data_keep "$w/spks" "$src/$f" "$data_tmp/$f"; done
data_note_left_out "$src" "${left_out[@]}"

# Per-speaker CMVN stats were computed over all of a speaker's utterances.
if [ -f "$src/cmvn.scp" ]; then
  awk 'NR == FNR { kept[$2]++; next } ($2 in kept) { n[$2]++ }
       END { for (s in n) if (n[s] > kept[s]) print s }' \
    "$data_tmp/utt2spk" "$w/utt2spk" | sort > "$w/shrunk"
  if [ -s "$w/shrunk" ]; then
    log "WARNING: $(wc -l < "$w/shrunk") kept speakers lost some of their utterances" \
      "(first: $(head -n 1 "$w/shrunk")); their stats in $dest/cmvn.scp are stale:" \
      "recompute cmvn.scp (steps/compute_cmvn_stats.sh $dest)"
  fi
fi

kept=$(wc -l < "$data_tmp/utt2spk")
nspk=$(wc -l < "$w/spks")
how="--$mode${count:+ $count}"
[ "$mode" != random ] || how="$count at random, seed $seed"
data_commit "$dest"
log "kept $kept of $total utterances ($nspk speakers) of $src in $dest ($how)"
