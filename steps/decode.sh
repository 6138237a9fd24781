#!/usr/bin/env bash
# Decode a data dir with a GMM-HMM (exp/mono) or a neural model (exp/lstm*):
# per-pdf log-likelihoods (loglikes.JOB.ark), then best paths through HCLG
# for every LM weight and word insertion penalty
# (scoring/<LMWT>_<WIP>/hyp.JOB.tra): with --rescore true each utterance is
# decoded once, at --lattice-lmwts, into a lattice that is rescored at every
# pair (as Kaldi's scoring; a path best far from the lattice's LM weight can
# fall outside --lattice-beam; several lattice LM weights make one pass each,
# and each LM weight is rescored from the nearest), with --rescore false it is
# decoded again for every pair (--max-active applies to this one only). The model is the parent of
# <decode-dir>, as in Kaldi. Score with steps/score.sh. <decode-dir>/.decode.record
# says what it was decoded from (graph, features, model, options, code); a
# rerun skips while it matches, and a redo is built in <decode-dir>.next and
# replaces the old decode dir only when complete.
set -euo pipefail

nj=4
cmd=utils/run_local.sh
lmwts="0.5 0.75 1 1.5 2 3 4 5 6 8 10 12"   # LM weights to try (phone bigrams want low ones, word LMs 7..17)
word_ins_penalties="0.0"                   # word insertion penalties to try, e.g. "0.0 0.5 1.0"
beam=13.0
max_active=7000
lattice_beam=6.0
rescore=false                              # true: decode once into lattices and rescore (faster; see mtlasr.lattice); false: decode per LM weight
lattice_lmwts=                             # LM weight(s) of the lattice pass(es) (empty: one, the middle of --lmwts)
device=cpu
force=false
help_message="Usage: $0 [options] <graph-dir> <data-dir> <decode-dir>
e.g.: $0 --nj 4 exp/mono/graph data/dev exp/mono/decode_dev"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
graph=$1 data=$2 dir=$3
srcdir=$(dirname "$dir")

require_files "$graph/HCLG.fst" "$graph/words.txt" "$data/feats.scp" "$data/cmvn.scp" "$srcdir/final.mdl"
if [ -f "$srcdir/final.pt" ]; then  # a network: its weights and pdf priors
  model_files=("$srcdir/final.pt" "$srcdir/ali_train_pdf.counts" "$srcdir/final.mdl")
else                                # a GMM and the feature options it was trained with
  model_files=("$srcdir/final.mdl" "$srcdir/cmvn_opts" "$srcdir/delta_order")
fi
nspk=$(wc -l < "$data/spk2utt")
[ "$nj" -gt "$nspk" ] && nj=$nspk
options="lmwts=$lmwts word_ins_penalties=$word_ins_penalties beam=$beam max_active=$max_active"
options+=" lattice_beam=$lattice_beam rescore=$rescore lattice_lmwts=$lattice_lmwts"
case "$rescore" in true|false) ;; *) die "--rescore must be true or false, got '$rescore'" ;; esac
record=$(step_record "$options" "$graph" "$data/feats.scp" "$data/cmvn.scp" "${model_files[@]}")
if [ "$force" = false ] && step_fresh "$dir" decode "$record"; then
  log "$dir: already decoded with these inputs and options; skipping"
  exit 0
fi
# Decoded into $dir.next, which replaces $dir (and the scores in it) only when complete.
next=$dir.next
rm -rf "$next"
mkdir -p "$next/log" "$next/scoring"
utils/split_data.sh "$data" "$nj"
start=$(date +%s)
if [ -f "$srcdir/final.pt" ]; then
  $cmd JOB=1:"$nj" "$next/log/forward.JOB.log" \
    python3 -m mtlasr.bin.nnet_forward --device "$device" "$srcdir" "$data/split$nj/JOB" "$next/loglikes.JOB.ark" \
    || die_log "$next/log/forward.*.log" "network forward pass failed"
else
  $cmd JOB=1:"$nj" "$next/log/compute_likes.JOB.log" \
    python3 -m mtlasr.bin.gmm_compute_likes "$srcdir" "$data/split$nj/JOB" "$next/loglikes.JOB.ark" \
    || die_log "$next/log/compute_likes.*.log" "GMM likelihoods failed"
fi
$cmd JOB=1:"$nj" "$next/log/decode.JOB.log" \
  python3 -m mtlasr.bin.decode_loglikes --lmwts "$lmwts" --word-ins-penalties "$word_ins_penalties" --beam "$beam" \
    --max-active "$max_active" --lattice-beam "$lattice_beam" --rescore "$rescore" --lattice-lmwts="$lattice_lmwts" \
    "$srcdir/final.mdl" "$graph" "$next/loglikes.JOB.ark" "$next" JOB \
  || die_log "$next/log/decode.*.log" "decoding failed"
echo "$nj" > "$next/num_jobs"
step_done "$next" decode "$record"
replace_dir "$next" "$dir"
log "$dir: decoded in $(( $(date +%s) - start )) s; $(grep -h 'real-time factor' "$dir"/log/decode.1.log | sed 's/.*INFO //')"
