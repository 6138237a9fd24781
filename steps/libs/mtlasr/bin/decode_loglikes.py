"""Decode pdf log-likelihood matrices through HCLG at every LM weight and word insertion penalty.

Usage:
  python3 -m mtlasr.bin.decode_loglikes [options] <trans-model> <graph-dir> <loglikes.ark> <out-dir> <job>

  e.g.: python3 -m mtlasr.bin.decode_loglikes --lmwts "1 4 8" --word-ins-penalties "0.0 0.5" \\
          --rescore true --lattice-lmwts "" --beam 13.0 --max-active 7000 --lattice-beam 6.0 \\
          exp/mono/final.mdl exp/mono/graph exp/mono/decode_dev/loglikes.1.ark exp/mono/decode_dev 1

For each LM weight w and penalty p, writes the best path's words to
``<out-dir>/scoring/<w>_<p>/hyp.<job>.tra`` (Kaldi text: utt w1 w2 ...);
the path minimises graph cost + acoustic cost / w + (p / w) per word
(mtlasr.decode, mtlasr.lattice). Two ways, the same outputs:

  --rescore true: decode each utterance once, with Kaldi's lattice-simple
    decoder at LM weight --lattice-lmwts (empty: the middle of --lmwts,
    mtlasr.lattice.default_lattice_lmwt), keep its lattice (--lattice-beam)
    and take the best path of the rescaled lattice at every (w, p), as
    Kaldi's scoring does. --max-active does not apply (that decoder has
    none). A path best at a weight far from the lattice's can fall outside
    the lattice beam (mtlasr.lattice); for a wide sweep, --lattice-lmwts may
    name several weights: one pass each, and each w is rescored from the
    lattice nearest to it on a log scale (mtlasr.lattice.assign_lmwts).
  --rescore false: decode again for every (w, p) with Kaldi's
    lattice-faster decoder (--beam, --max-active).

Utterances that reach no final state are logged and written with an empty
hypothesis (they then count as deletions when scoring). The defaults of
every option live in steps/decode.sh.
"""

import logging
import sys
import time
from pathlib import Path

from mtlasr.cli import make_parser, program
from mtlasr import gmm
from mtlasr.datadir import atomic_open, read_symbol_table
from mtlasr.decode import Decoder, parse_lmwts, parse_penalties, scoring_dir_name
from mtlasr.graph import map_arcs, read_fst
from mtlasr.lattice import LatticeDecoder, assign_lmwts, default_lattice_lmwt, rescore

logger = logging.getLogger("decode_loglikes")


def get_parser():
    p = make_parser(__doc__, "trans_model", "graph_dir", "loglikes", "out_dir", "job")
    p.add_argument("--lmwts", required=True, help="LM weights, a:b or a list")
    p.add_argument("--word-ins-penalties", required=True, help="word insertion penalties, a list")
    p.add_argument("--rescore", required=True, choices=["true", "false"],
                   help="true: decode once into lattices and rescore them; false: decode per (w, p)")
    p.add_argument("--lattice-lmwts", required=True,
                   help="LM weights of the lattice passes, a:b or a list (empty: one, the middle of --lmwts); "
                        "--rescore true only")
    p.add_argument("--beam", type=float, required=True)
    p.add_argument("--max-active", type=int, required=True, help="--rescore false only")
    p.add_argument("--lattice-beam", type=float, required=True)
    return p


def decode_per_weight(mats, hclg, tm, args, lmwts, penalties):
    """Re-decoding: one lattice-faster pass per (w, p). Returns
    ``({(w, p): [(utt, word ids or None)]}, failures)``."""
    out, failed = {}, 0
    for p in penalties:
        for w in lmwts:
            g = hclg if float(p) == 0.0 else map_arcs(hclg, olabel_penalty=float(p) / float(w))
            decoder = Decoder(g, tm, args.beam, args.max_active, args.lattice_beam)
            hyps = out[(w, p)] = []
            for utt, m in mats.items():
                r = decoder.decode(m, 1.0 / float(w), utt)
                if r is None:
                    failed += 1
                    logger.warning("utterance %s: no final state reached at LM weight %s, penalty %s; "
                                   "empty hypothesis", utt, w, p)
                hyps.append((utt, None if r is None else r[0]))
    return out, failed


def decode_once(mats, hclg, tm, args, lmwts, penalties):
    """Decoding once: one lattice per utterance at the lattice LM weight
    (or one per lattice LM weight given), rescored at every (w, p).
    Returns as :func:`decode_per_weight`."""
    spec = args.lattice_lmwts.strip()
    lattice_lmwts = [float(w) for w in parse_lmwts(spec)] if spec else [default_lattice_lmwt(lmwts)]
    groups = assign_lmwts(lmwts, lattice_lmwts)
    decoders = {w0: LatticeDecoder(hclg, tm, w0, args.beam, args.lattice_beam) for w0 in groups}
    out = {(w, p): [] for p in penalties for w in lmwts}
    failed, states = 0, {w0: 0 for w0 in groups}
    for utt, m in mats.items():
        for w0, ws in groups.items():
            lat = decoders[w0].decode(m, utt)
            if lat is None:
                failed += len(ws) * len(penalties)
                logger.warning("utterance %s: no final state reached at lattice LM weight %s; empty hypothesis "
                               "at LM weights %s", utt, w0, " ".join(ws))
                for p in penalties:
                    for w in ws:
                        out[(w, p)].append((utt, None))
                continue
            states[w0] += lat.num_states
            for key, path in rescore(lat, w0, ws, penalties).items():
                out[key].append((utt, path[0]))
    for w0, ws in groups.items():
        logger.info("lattices at LM weight %s (beam %s, lattice beam %s; rescored at %s): %.0f states per "
                    "utterance", w0, args.beam, args.lattice_beam, " ".join(ws), states[w0] / max(len(mats), 1))
    return out, failed


def run(args):
    import kaldiio

    try:
        lmwts, penalties = parse_lmwts(args.lmwts), parse_penalties(args.word_ins_penalties)
    except ValueError as e:
        logger.error("%s", e)
        return 1
    tm = gmm.load_transition_model(args.trans_model)
    graph = Path(args.graph_dir)
    id2word = {i: w for w, i in read_symbol_table(graph / "words.txt").items()}
    hclg = read_fst(graph / "HCLG.fst")
    mats = dict(kaldiio.load_ark(args.loglikes))
    t0 = time.time()
    sweep = decode_once if args.rescore == "true" else decode_per_weight
    hyps, failed = sweep(mats, hclg, tm, args, lmwts, penalties)
    out = Path(args.out_dir) / "scoring"
    for (w, p), lines in hyps.items():
        with atomic_open(out / scoring_dir_name(w, p) / f"hyp.{args.job}.tra") as f:
            f.write("\n".join(" ".join([utt] + [id2word[i] for i in words or []]) for utt, words in lines) + "\n")
    el = time.time() - t0
    seconds = sum(m.shape[0] for m in mats.values()) * 0.01  # 10 ms frames
    logger.info("%s %d utterances x %d LM weights x %d penalties, %d failures; real-time factor %.4f "
                "(the whole sweep)", "rescored" if args.rescore == "true" else "decoded", len(mats),
                len(lmwts), len(penalties), failed, el / max(seconds, 1e-9))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
