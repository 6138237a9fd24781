#!/usr/bin/env bash
# Decode the CTC outputs of an end-to-end model: <forward-dir>/logprobs.scp
# (per utterance a (frames, V) matrix of log-softmax outputs, frames after
# subsampling) over the units of <forward-dir>/units.txt (id 0 = <blk>).
# Without --lm and --lexicon: greedy decoding, one setting (scoring/0_0/).
# With --lm: beam search (flashlight-text) with the n-gram LM, over the units
# (lexicon-free: a phone, letter or piece LM trained on the same units) or,
# with --lexicon, over words (a word LM); one setting per LM weight and
# insertion score (a bonus per unit, or per word with a lexicon; negative: a
# penalty): scoring/<lmwt>_<score>/hyp.JOB.tra, the layout steps/score.sh
# reads to score and choose the pair (on dev, then --lmwt-from on test).
# The real-time factor (decoding seconds / audio seconds, audio seconds =
# frames x frame_shift x subsampling) is in <decode-dir>/log/decode_ctc.*.log.
# <decode-dir> may be <forward-dir>. <decode-dir>/.decode.record says what
# it was decoded from; a rerun skips while it matches, and a redo replaces
# the old hypotheses only when every job succeeded.
set -euo pipefail

nj=4
cmd=utils/run_local.sh
lm=                                # ARPA LM (units: lexicon-free; words: with --lexicon)
lexicon=                           # lexicon.txt (word u1 u2 ...) for word decoding
lm_weights="0 0.25 0.5 0.75 1 1.5 2"   # weights of ln P_LM to try (with --lm)
word_scores="0"                    # insertion scores to try, e.g. "-1 0 1" (without a lexicon,
                                   # non-zero ones decode 5-10x slower)
beam=50                            # hypotheses kept per frame
beam_threshold=25                  # prune hypotheses this far (natural log) below the best
beam_size_token=20                 # units tried per frame, most likely first (0: all)
word_sep=                          # word-separator unit of letter systems ('<space>', '|')
sil_score=0                        # score per frame emitting the word separator
allow_missing_units=false          # accept a unit LM lacking some units (unused BPE pieces)
join=auto                          # units -> tokens: none (phones), sep (letters), pieces, auto
frame_shift=0.01                   # seconds per input frame (for the real-time factor)
subsampling=                       # input frames per output frame (default: <forward-dir>/subsampling, else 1)
force=false
help_message="Usage: $0 [options] <forward-dir> <data-dir> <decode-dir>
e.g.: $0 --nj 4 exp/ctc/decode_dev data/dev exp/ctc/decode_dev
      $0 --lm exp/lm_phone2/lm.arpa --lm-weights '0 0.5 1' exp/ctc/decode_dev data/dev exp/ctc/decode_dev
      $0 --lm exp/lm_word3/lm.arpa --lexicon exp/sp/lexicon.txt --word-scores '0 2' fwd data/test exp/ctc/decode_test"

[ -f ./path.sh ] && . ./path.sh
. utils/lib.sh
. utils/parse_options.sh
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
fwd=$1 data=$2 dir=$3

require_files "$fwd/logprobs.scp" "$fwd/units.txt" "$data/utt2spk" "$data/spk2utt"
[ -z "$lm" ] || require_files "$lm"
[ -z "$lexicon" ] || require_files "$lexicon"
inputs=("$fwd/logprobs.scp" "$fwd/units.txt" "$data/utt2spk")
# The arks behind the scp: a new forward pass may leave the scp's offsets as they were.
mapfile -t arks < <(awk '{ sub(/:[0-9]+$/, "", $2); print $2 }' "$fwd/logprobs.scp" | sort -u)
[ "${#arks[@]}" -gt 0 ] || die "$fwd/logprobs.scp is empty"
for ark in "${arks[@]}"; do
  [ -f "$ark" ] || die "$fwd/logprobs.scp points into $ark, which does not exist (from $PWD)"
done
inputs+=("${arks[@]}")
[ -n "$subsampling" ] || subsampling=$(cat "$fwd/subsampling" 2> /dev/null || echo 1)
opts=(--join "$join" --frame-shift "$frame_shift" --subsampling "$subsampling")
[ -z "$word_sep" ] || opts+=(--word-sep "$word_sep")
options="join=$join word_sep=$word_sep"
if [ -n "$lm" ] || [ -n "$lexicon" ]; then
  opts+=(--lm-weights "$lm_weights" --word-scores "$word_scores" --beam "$beam"
         --beam-threshold "$beam_threshold" --beam-size-token "$beam_size_token" --sil-score "$sil_score")
  [ -z "$lm" ] || { opts+=(--lm "$lm"); inputs+=("$lm"); }
  [ -z "$lexicon" ] || { opts+=(--lexicon "$lexicon"); inputs+=("$lexicon"); }
  options+=" lm_weights=$lm_weights word_scores=$word_scores beam=$beam beam_threshold=$beam_threshold"
  options+=" beam_size_token=$beam_size_token sil_score=$sil_score allow_missing_units=$allow_missing_units"
  [ "$allow_missing_units" = false ] || opts+=(--allow-missing-units)
  what="beam search${lexicon:+ with a lexicon}${lm:+ and the LM $lm}"
else
  options+=" greedy"
  what="greedy decoding (no --lm, no --lexicon)"
fi
record=$(step_record "$options" "${inputs[@]}")
if [ "$force" = false ] && step_fresh "$dir" decode "$record"; then
  log "$dir: already decoded with these inputs and options; skipping"
  exit 0
fi
nspk=$(wc -l < "$data/spk2utt")
[ "$nj" -gt "$nspk" ] && nj=$nspk
# Decoded into $dir/.next; the old hypotheses go only when all jobs succeeded.
next=$dir/.next
rm -rf "$next"
mkdir -p "$next/log"
utils/split_data.sh "$data" "$nj"
log "$what of $fwd/logprobs.scp for $data in $nj jobs"
start=$(date +%s)
$cmd JOB=1:"$nj" "$next/log/decode_ctc.JOB.log" \
  python3 -m mtlasr.bin.decode_ctc "${opts[@]}" --utts "$data/split$nj/JOB/utt2spk" \
    "$fwd/logprobs.scp" "$fwd/units.txt" "$next" JOB \
  || die_log "$next/log/decode_ctc.*.log" "CTC decoding failed"
echo "$nj" > "$next/num_jobs"
rm -f "$dir"/log/decode_ctc.*.log
publish "$next" "$dir"
step_done "$dir" decode "$record"
log "$dir: decoded in $(( $(date +%s) - start )) s; $(grep -h 'real-time factor' "$dir/log/decode_ctc.1.log" | sed 's/.*INFO //')"
