#!/usr/bin/env bash
# Speaker-verification EER of a network's pooled speaker head (seed 003):
# the embedding of every utterance of <data-dir>
# (mtlasr.bin.extract_embeddings: <dir>/emb/embeddings.{ark,scp}), scored by
# cosine similarity on the trials of <trials> (VoxCeleb's or Kaldi's order;
# mtlasr.bin.ivector_eer --trials): <dir>/eer, the trial scores beside it.
# <dir>/.eer.record says what the outputs were made from; a rerun skips
# while it matches, and a redo is built in <dir>.next and replaces <dir>
# only when complete.
set -euo pipefail

task=spk
device=cpu
force=false
help_message="Usage: $0 [options] <nnet-dir> <data-dir> <trials> <dir>
e.g.: $0 exp/dynamic_s0 data/spk_test data/spk_test/trials exp/dynamic_s0/eer_spk_test
Options: --task NAME (the pooled head, default spk), --device, --force true|false"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 4 ]; then echo "$help_message" >&2; exit 1; fi
nnet=$1 data=$2 trials=$3 dir=$4

require_files "$nnet/final.pt" "$data/feats.scp" "$trials"
record=$(step_record "task=$task device=$device" "$nnet/final.pt" "$data/feats.scp" "$trials")
if [ "$force" = false ] && [ -f "$dir/eer" ] && step_fresh "$dir" eer "$record"; then
  log "$dir: EER already computed from these inputs; skipping"
  exit 0
fi
next=$dir.next
rm -rf "$next"
mkdir -p "$next/log"
python3 -m mtlasr.bin.extract_embeddings --task "$task" --device "$device" "$nnet" "$data" "$next/emb" \
  > "$next/log/embeddings.log" 2>&1 || die_log "$next/log/embeddings.log" "speaker embeddings of $data from $nnet failed"
python3 -m mtlasr.bin.ivector_eer --trials "$trials" "$next" "$data" "$next/emb" > "$next/log/eer.log" 2>&1 ||
  die_log "$next/log/eer.log" "EER of $nnet on $trials failed"
# the scp names the ark in $next; once moved it must name $dir
sed -i "s|$next/emb/|$dir/emb/|" "$next/emb/embeddings.scp"
replace_dir "$next" "$dir"
step_done "$dir" eer "$record"
log "$dir: $(head -n 1 "$dir/eer")"
