"""Decode CTC log-probabilities: greedy, or beam search with an n-gram LM, for a grid of LM weights and insertion scores.

Usage:
  python3 -m mtlasr.bin.decode_ctc [options] <logprobs.scp> <units.txt> <out-dir> <job>

  e.g.: python3 -m mtlasr.bin.decode_ctc --join auto --frame-shift 0.01 --subsampling 4 \\
          exp/ctc/decode_dev/logprobs.scp exp/ctc/units.txt exp/ctc/decode_dev 1
        python3 -m mtlasr.bin.decode_ctc --lm exp/lm_phone2/lm.arpa --lm-weights "0 0.5 1" \\
          --word-scores "0 1" --beam 50 --beam-threshold 25 --beam-size-token 0 --sil-score 0 \\
          --join auto --frame-shift 0.01 --subsampling 1 --utts data/dev/split4/1/utt2spk \\
          exp/ctc/decode_dev/logprobs.scp exp/ctc/units.txt exp/ctc/decode_dev 1
        (word decoding: add --lexicon data/local/dict/lexicon.txt and a word LM)

<logprobs.scp> holds one (frames, V) matrix of log-softmax outputs per
utterance (frames after subsampling) over the units of <units.txt>
(``<unit> <id>``, id 0 the blank ``<blk>``); see mtlasr.ctc_decode.

Without --lm and --lexicon: greedy decoding (argmax, repeats merged, blanks
dropped), written as the one setting ``0_0``. With --lm (and, for a word
LM, --lexicon): beam search for every LM weight w of --lm-weights and
insertion score s of --word-scores (a bonus per word with a lexicon, per
unit without; negative: a penalty), each written as
``<out-dir>/scoring/<w>_<s>/hyp.<job>.tra`` (Kaldi text: ``utt tok1 tok2
...``), the layout steps/score.sh reads. Hypothesis tokens: the lexicon's
words; else units joined as --join says (none: the units, e.g. phones;
sep: letters joined into words at --word-sep; pieces: sentencepiece pieces
joined at U+2581; auto: pieces if the units are pieces, sep with a
--word-sep, else none).

Logs, per setting, the mean scores and the decoding time, and at the end the
real-time factor: decoding seconds / audio seconds per setting, where
audio seconds = frames x --frame-shift x --subsampling. The defaults of the
options live in steps/decode_ctc.sh.
"""

import logging
import sys
import time
from pathlib import Path

from mtlasr.cli import make_parser, program
from mtlasr import ctc_decode
from mtlasr.units import read_units
from mtlasr.datadir import atomic_open, read_table
from mtlasr.decode import parse_penalties, scoring_dir_name

logger = logging.getLogger("decode_ctc")


def get_parser():
    p = make_parser(__doc__, "logprobs_scp", "units", "out_dir", "job")
    p.add_argument("--lm", help="ARPA n-gram LM: over the units (no --lexicon) or over words (--lexicon)")
    p.add_argument("--lexicon", help="lexicon.txt (word u1 u2 ...): word decoding with a word LM")
    p.add_argument("--lm-weights", help="LM weights (>= 0) to try, a list, e.g. '0 0.5 1'")
    p.add_argument("--word-scores", help="insertion scores to try (per word / per unit), a list")
    p.add_argument("--beam", type=int, help="hypotheses kept per frame")
    p.add_argument("--beam-threshold", type=float, help="prune hypotheses this far (ln) below the best")
    p.add_argument("--beam-size-token", type=int, help="units tried per frame (0: all)")
    p.add_argument("--word-sep", default="", help="word-separator unit ('<space>', '|'); '': none")
    p.add_argument("--sil-score", type=float, help="score per frame emitting the word separator")
    p.add_argument("--allow-missing-units", action="store_true",
                   help="accept a unit LM that lacks some units (scored as <unk>), e.g. unused BPE pieces")
    p.add_argument("--join", choices=ctc_decode.JOIN_MODES, required=True,
                   help="how units become hypothesis tokens (no --lexicon)")
    p.add_argument("--frame-shift", type=float, required=True, help="seconds per input frame")
    p.add_argument("--subsampling", type=int, required=True, help="input frames per output frame")
    p.add_argument("--utts", help="decode only the utterances of this table's first column, in its order")
    return p


def parse_lm_weights(spec: str):
    """``"0 0.5 1"`` -> LM weights as strings (directory names).

    Raises: ValueError for an empty list or a negative or malformed weight.
    """
    out = spec.split()
    if not out:
        raise ValueError("no LM weight given")
    for w in out:
        if float(w) < 0:
            raise ValueError(f"LM weight {w} must be >= 0")
    return out


def settings(args):
    """The (LM weight, insertion score) strings to decode with, and the beam
    search (None for greedy decoding)."""
    beam_mode = bool(args.lm or args.lexicon)
    if not beam_mode:
        for opt in ("lm_weights", "word_scores"):
            if getattr(args, opt):
                raise ValueError(f"--{opt.replace('_', '-')} needs --lm or --lexicon (greedy decoding has no weights)")
        return [("0", "0")], None
    for opt in ("lm_weights", "word_scores", "beam", "beam_threshold", "beam_size_token", "sil_score"):
        if getattr(args, opt) is None:
            raise ValueError(f"--{opt.replace('_', '-')} is required for beam search (--lm or --lexicon given)")
    grid = [(w, s) for w in parse_lm_weights(args.lm_weights) for s in parse_penalties(args.word_scores)]
    return grid, ctc_decode.BeamOptions(beam=args.beam, beam_threshold=args.beam_threshold,
                                        beam_size_token=args.beam_size_token, sil_score=args.sil_score,
                                        word_sep=args.word_sep or None)


def run(args):
    import kaldiio

    if args.frame_shift <= 0 or args.subsampling < 1:
        raise ValueError(f"--frame-shift must be > 0 and --subsampling >= 1, got {args.frame_shift}, {args.subsampling}")
    units = read_units(args.units)
    grid, opts = settings(args)
    word_sep = args.word_sep or None
    if word_sep is not None and word_sep not in units:
        raise ValueError(f"--word-sep '{word_sep}' is not a unit of {args.units}")
    join = ctc_decode.join_mode(units, args.join, word_sep)

    scp = kaldiio.load_scp(args.logprobs_scp)
    utts = list(read_table(args.utts, allow_empty_value=True)) if args.utts else list(scp.keys())
    mats = {}
    for utt in utts:
        if utt not in scp:
            raise ValueError(f"{args.logprobs_scp}: no log-probabilities for utterance {utt}")
        mats[utt] = ctc_decode.check_logprobs(scp[utt], len(units), utt)
    frames = sum(m.shape[0] for m in mats.values())
    audio = frames * args.frame_shift * args.subsampling

    search = None
    if opts is not None:
        lexicon = ctc_decode.read_lexicon(args.lexicon, units) if args.lexicon else None
        t0 = time.perf_counter()
        search = ctc_decode.CtcBeamSearch(units, opts, arpa=args.lm, lexicon=lexicon,
                                          allow_missing_units=args.allow_missing_units)
        logger.info("beam search, %s mode, %s (loaded in %.2f s); %d units, beam %d, threshold %g",
                    "lexicon" if lexicon else "lexicon-free", f"LM {args.lm}" if args.lm else "no LM",
                    time.perf_counter() - t0, len(units), opts.beam, opts.beam_threshold)
    else:
        logger.info("greedy decoding; %d units", len(units))
    out = Path(args.out_dir) / "scoring"
    total = 0.0
    for w, s in grid:
        t0 = time.perf_counter()
        lines, am, lm, ntok = [], 0.0, 0.0, 0
        for utt, m in mats.items():
            h = ctc_decode.greedy_decode(m) if search is None else search.decode(m, float(w), float(s))
            toks = h.words if h.words is not None else \
                ctc_decode.units_to_words([units[i] for i in h.units], join, word_sep)
            lines.append(" ".join([utt] + toks))
            am, lm, ntok = am + h.am_score, lm + h.lm_score, ntok + len(toks)
        el = time.perf_counter() - t0
        total += el
        with atomic_open(out / scoring_dir_name(w, s) / f"hyp.{args.job}.tra") as f:
            f.write("\n".join(lines) + "\n")
        n = max(len(mats), 1)
        logger.info("LM weight %s, insertion score %s: %.2f tokens, AM score %.3f, LM score %.3f per "
                    "utterance; %.3f s, RTF %.4f", w, s, ntok / n, am / n, lm / n, el, el / max(audio, 1e-9))
    logger.info("decoded %d utterances (%d frames, %.2f s of audio) x %d settings in %.3f s; "
                "real-time factor %.4f per setting", len(mats), frames, audio, len(grid), total,
                total / len(grid) / max(audio, 1e-9))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
