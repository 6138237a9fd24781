"""Decode pdf log-likelihood matrices through HCLG, once per LM weight and word insertion penalty.

Usage:
  python3 -m mtlasr.bin.decode_loglikes [options] <trans-model> <graph-dir> <loglikes.ark> <out-dir> <job>

  e.g.: python3 -m mtlasr.bin.decode_loglikes --lmwts "1 4 8" --word-ins-penalties "0.0 0.5" \\
          exp/mono/final.mdl exp/mono/graph exp/mono/decode_dev/loglikes.1.ark exp/mono/decode_dev 1

For each LM weight w and penalty p, decodes with acoustic scale 1/w through
the graph with p/w added to every word arc (mtlasr.decode) and writes the
best path's words to ``<out-dir>/scoring/<w>_<p>/hyp.<job>.tra`` (Kaldi
text: utt w1 w2 ...). Utterances that reach no final state are logged and
written with an empty hypothesis (they then count as deletions when
scoring). The defaults of every option live in steps/decode.sh.
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

logger = logging.getLogger("decode_loglikes")


def get_parser():
    p = make_parser(__doc__, "trans_model", "graph_dir", "loglikes", "out_dir", "job")
    p.add_argument("--lmwts", required=True, help="LM weights, a:b or a list")
    p.add_argument("--word-ins-penalties", required=True, help="word insertion penalties, a list")
    p.add_argument("--beam", type=float, required=True)
    p.add_argument("--max-active", type=int, required=True)
    p.add_argument("--lattice-beam", type=float, required=True)
    return p


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
    out = Path(args.out_dir) / "scoring"
    t0, frames, failed = time.time(), 0, 0
    for p in penalties:
        for w in lmwts:
            g = hclg if float(p) == 0.0 else map_arcs(hclg, olabel_penalty=float(p) / float(w))
            decoder = Decoder(g, tm, args.beam, args.max_active, args.lattice_beam)
            lines = []
            for utt, m in mats.items():
                r = decoder.decode(m, 1.0 / float(w), utt)
                if r is None:
                    failed += 1
                    logger.warning("utterance %s: no final state reached at LM weight %s, penalty %s; "
                                   "empty hypothesis", utt, w, p)
                    lines.append(utt)
                    continue
                lines.append(" ".join([utt] + [id2word[i] for i in r[0]]))
                frames += m.shape[0]
            with atomic_open(out / scoring_dir_name(w, p) / f"hyp.{args.job}.tra") as f:
                f.write("\n".join(lines) + "\n")
    el = time.time() - t0
    logger.info("decoded %d utterances x %d LM weights x %d penalties, %d failures; real-time factor %.4f",
                len(mats), len(lmwts), len(penalties), failed, el / max(frames * 0.01, 1e-9))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
