#!/usr/bin/env bash
# Stage 0 of the TIMIT recipe: data/{train,dev,test} from a TIMIT corpus (LDC
# layout or the NLTK sample; local/timit_data_prep.py), validated.
# <data-root>/.prep.record says what they were made from (every corpus file's
# size and time, the speaker lists, the phone map, the options, the code): a
# rerun skips while it matches. A redo writes each data dir afresh: a dir
# whose tables come out the same is left as it is (with its features); one
# that changed is replaced by a fresh dir, so files derived from the old one
# (feats.scp, cmvn.scp, utt2num_frames, splits) go with it.
set -euo pipefail

dev_spk_list=conf/dev_spk.list    # LDC layout: dev speakers
test_spk_list=conf/test_spk.list  # LDC layout: core-test speakers
phone_map=conf/phones.60-48-39.map
include_sa=false                  # keep the SA sentences
force=false                       # redo even if up to date
help_message="Usage: $0 [options] <timit-dir> <data-root>
e.g.: $0 /corpora/LDC93S1/TIMIT data"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
timit=$1 data=$2

require_files "$dev_spk_list" "$test_spk_list" "$phone_map"
[ -d "$timit" ] || die "$timit: no such directory (the TIMIT corpus)"
record=$(step_record "include_sa=$include_sa" "$dev_spk_list" "$test_spk_list" "$phone_map" "tree:$timit")
if [ "$force" = false ] && step_fresh "$data" prep "$record" && [ -s "$data/train/text" ] && [ -s "$data/dev/text" ] && [ -s "$data/test/text" ]; then
  log "$data/{train,dev,test}: up to date with $timit; skipping"
  exit 0
fi
opts=(--dev-spk-list "$dev_spk_list" --test-spk-list "$test_spk_list" --phone-map "$phone_map")
[ "$include_sa" = true ] && opts+=(--include-sa)
mkdir -p "$data/log"
python3 local/timit_data_prep.py "${opts[@]}" "$timit" "$data" 2>&1 | tee "$data/log/prep.log" >&2 ||
  die_log "$data/log/prep.log" "data preparation from $timit failed"
for s in train dev test; do utils/validate_data_dir.sh --no-feats "$data/$s" > /dev/null; done
step_done "$data" prep "$record"
