"""Decode pdf log-likelihood matrices through HCLG, once per LM weight.

Usage:
  python3 -m mtlasr.bin.decode_loglikes [options] <trans-model> <graph-dir> <loglikes.ark> <out-dir> <job>

  e.g.: python3 -m mtlasr.bin.decode_loglikes --lmwts 1:12 exp/mono/final.mdl \\
          exp/mono/graph exp/mono/decode_dev/loglikes.1.ark exp/mono/decode_dev 1

For each LM weight w, decodes with acoustic scale 1/w and writes the best
path's words to ``<out-dir>/scoring/<w>/hyp.<job>.tra`` (Kaldi text: utt w1 w2 ...).
Utterances that reach no final state are logged and written with an empty
hypothesis (they then count as deletions when scoring).
"""

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from mtlasr import gmm
from mtlasr.datadir import read_symbol_table
from mtlasr.decode import Decoder, parse_lmwts
from mtlasr.graph import read_fst

logger = logging.getLogger("decode_loglikes")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lmwts", default="0.5 0.75 1 1.5 2 3 4 5 6 8 10 12", help="LM weights, a:b or a list (default %(default)s)")
    p.add_argument("--beam", type=float, default=13.0, help="(default %(default)s)")
    p.add_argument("--max-active", type=int, default=7000, help="(default %(default)s)")
    p.add_argument("--lattice-beam", type=float, default=6.0, help="(default %(default)s)")
    p.add_argument("trans_model", help="a model file holding the transition model (final.mdl)")
    p.add_argument("graph_dir")
    p.add_argument("loglikes")
    p.add_argument("out_dir")
    p.add_argument("job")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    import kaldiio

    tm = gmm.load_transition_model(args.trans_model)
    graph = Path(args.graph_dir)
    id2word = {i: w for w, i in read_symbol_table(graph / "words.txt").items()}
    decoder = Decoder(read_fst(graph / "HCLG.fst"), tm, args.beam, args.max_active, args.lattice_beam)
    lmwts = parse_lmwts(args.lmwts)
    mats = dict(kaldiio.load_ark(args.loglikes))
    out = Path(args.out_dir) / "scoring"
    out.mkdir(parents=True, exist_ok=True)
    t0, frames, failed = time.time(), 0, 0
    for w in lmwts:
        lines = []
        for utt, m in mats.items():
            r = decoder.decode(m, 1.0 / float(w), utt)
            if r is None:
                failed += 1
                logger.warning("utterance %s: no final state reached at LM weight %s; empty hypothesis", utt, w)
                lines.append(utt)
                continue
            lines.append(" ".join([utt] + [id2word[i] for i in r[0]]))
            frames += m.shape[0]
        (out / w).mkdir(exist_ok=True)
        tmp = out / w / f"hyp.{args.job}.tra.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, out / w / f"hyp.{args.job}.tra")
    el = time.time() - t0
    logger.info("decoded %d utterances x %d LM weights, %d failures; real-time factor %.4f",
                len(mats), len(lmwts), failed, el / max(frames * 0.01, 1e-9))
    return 0


if __name__ == "__main__":
    sys.exit(main())
