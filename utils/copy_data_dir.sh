#!/usr/bin/env bash
# Copy a data directory, optionally giving its utterances and speakers new ids.
set -euo pipefail

utt_prefix=""
spk_prefix=""
utt_suffix=""
spk_suffix=""
help_message="Usage: $0 [options] <src-data-dir> <dest-data-dir>
e.g.: $0 --utt-prefix rep2- --spk-prefix rep2- data/train data/train_rep2
Options:
  --utt-prefix P, --utt-suffix S   new utterance id = P<utt-id>S
  --spk-prefix P, --spk-suffix S   new speaker id = P<spk-id>S
Every file is copied with the ids renamed consistently: the keys of the
per-utterance files (text, feats.scp, segments, vad.scp, utt2*, and wav.scp
and reco2* when there is no segments file, since then a recording is an
utterance), both fields of utt2spk, the keys of cmvn.scp and spk2*; spk2utt
is made anew; recording ids (wav.scp, reco2* and the second field of
segments when there is a segments file) and all values stay as they are;
frame_shift is copied; other files are left out.
Rule: every new speaker id must still be a prefix of each of its new
utterance ids (an error names the first utterance that breaks it).  Give the
speakers the same prefix as the utterances (--utt-prefix P --spk-prefix P)
and use --spk-suffix only when it also begins each utterance's rest; an
--utt-suffix alone is always safe.  The result must pass
utils/validate_data_dir.sh; it is built in a temporary folder and moved into
place, replacing an earlier <dest-data-dir> as a whole (which must be a data
dir or empty).  Renaming with a new prefix and combining
(utils/combine_data.sh) makes a corpus N times larger under new ids."

# shellcheck source=utils/data_lib.sh
. "$(dirname "$0")/data_lib.sh"
. "$(dirname "$0")/parse_options.sh"
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
export LC_ALL=C
src=${1%/}
dest=${2%/}

for v in "$utt_prefix" "$spk_prefix" "$utt_suffix" "$spk_suffix"; do
  [[ ! $v =~ [[:space:]] ]] || die "an id prefix or suffix cannot contain white space: '$v'"
done
data_begin "$dest" "$src"

# rename PREFIX SUFFIX FILE: FILE with PREFIX and SUFFIX put around the
# first field of each line; the rest of the line is kept byte for byte.
# (The affixes go through the environment: awk -v would expand backslashes.)
rename() {
  RENAME_P=$1 RENAME_S=$2 awk '
    BEGIN { p = ENVIRON["RENAME_P"]; s = ENVIRON["RENAME_S"] }
    NF { i = index($0, $1); print substr($0, 1, i - 1) p $1 s substr($0, i + length($1)) }' "$3"
}

has_segments=false
[ -f "$src/segments" ] && has_segments=true
left_out=()
while read -r f; do
  out=$data_tmp/$f
  case "$(data_file_kind "$f" "$has_segments")" in
    utt) [ "$f" != utt2spk ] || continue  # below
         rename "$utt_prefix" "$utt_suffix" "$src/$f" > "$out" ;;
    spk) rename "$spk_prefix" "$spk_suffix" "$src/$f" > "$out" ;;
    reco|plain) cp "$src/$f" "$out" ;;
    other) left_out+=("$f"); continue ;;
    derived) continue ;;
  esac
  data_sort "$out"
done < <(data_files "$src")
data_note_left_out "$src" "${left_out[@]}"

# utt2spk: the speaker field is renamed too.
RENAME_UP=$utt_prefix RENAME_US=$utt_suffix RENAME_SP=$spk_prefix RENAME_SS=$spk_suffix awk '
  BEGIN { up = ENVIRON["RENAME_UP"]; us = ENVIRON["RENAME_US"]
          sp = ENVIRON["RENAME_SP"]; ss = ENVIRON["RENAME_SS"] }
  NF { print up $1 us, sp $2 ss }' "$src/utt2spk" | sort -s -k1,1 > "$data_tmp/utt2spk"
bad=$(awk 'index($1, $2) != 1 { print $1, $2; exit }' "$data_tmp/utt2spk")
[ -z "$bad" ] || die "new speaker id ${bad#* } is not a prefix of its new utterance id ${bad% *}" \
  "(utterances get '$utt_prefix<id>$utt_suffix', speakers '$spk_prefix<id>$spk_suffix';" \
  "give the speakers the same prefix as the utterances)"

data_commit "$dest"
log "copied $src to $dest ($(wc -l < "$dest/utt2spk") utterances," \
  "ids '$utt_prefix<utt>$utt_suffix', speakers '$spk_prefix<spk>$spk_suffix')"
