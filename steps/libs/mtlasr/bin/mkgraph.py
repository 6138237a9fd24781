"""Build the decoding graph HCLG.fst for a model and a lang dir with G.fst.

Usage:
  python3 -m mtlasr.bin.mkgraph --self-loop-scale 0.1 --transition-scale 1.0 <lang-dir> <model> <graph-dir>

  e.g.: python3 -m mtlasr.bin.mkgraph --self-loop-scale 0.1 --transition-scale 1.0 \\
          data/lang_test_bg exp/mono/final.mdl exp/mono/graph

Writes <graph-dir>/HCLG.fst (OpenFst binary), words.txt and phones.txt.
"""

import logging
import shutil
import sys
from pathlib import Path

from mtlasr.cli import make_parser, program
from mtlasr import gmm
from mtlasr.graph import make_hclg
from mtlasr.lang import Lang

logger = logging.getLogger("mkgraph")


def get_parser():
    p = make_parser(__doc__, "lang_dir", "model", "graph_dir")
    # steps/mkgraph.sh passes both: their defaults live there.
    p.add_argument("--self-loop-scale", type=float, required=True, help="scale of the HMM self-loop log-probabilities")
    p.add_argument("--transition-scale", type=float, required=True, help="scale of the other transition log-probabilities")
    return p


def run(args):
    lang = Lang(args.lang_dir)
    tm, tree, _ = gmm.load_model(args.model)
    hclg = make_hclg(lang, tm, tree, args.self_loop_scale, args.transition_scale)
    out = Path(args.graph_dir)
    out.mkdir(parents=True, exist_ok=True)
    for f in ("words.txt", "phones.txt"):
        shutil.copy(lang.dir / f, out / f)
    hclg.write(str(out / "HCLG.fst.tmp"))
    (out / "HCLG.fst.tmp").replace(out / "HCLG.fst")
    logger.info("wrote %s/HCLG.fst", out)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
