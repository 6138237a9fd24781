"""Per-pdf GMM log-likelihoods of a data dir's features, as a Kaldi matrix ark.

Usage:
  python3 -m mtlasr.bin.gmm_compute_likes <model-dir> <data-dir> <out.ark>

  e.g.: python3 -m mtlasr.bin.gmm_compute_likes exp/mono data/dev/split2/1 exp/mono/decode_dev/loglikes.1.ark

Features are prepared as for the model: its ``cmvn_opts`` and ``delta_order``
files are read back from <model-dir>. Each matrix is ``(T, num_pdfs) float32``.
"""

import argparse
import logging
import os
import sys
from pathlib import Path

from mtlasr import gmm
from mtlasr.decode import gmm_loglikes
from mtlasr.features import load_features, read_feature_opts

logger = logging.getLogger("gmm_compute_likes")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir")
    p.add_argument("data_dir")
    p.add_argument("out_ark")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    import kaldiio

    _, _, am = gmm.load_model(Path(args.model_dir) / "final.mdl")
    norm_vars, delta_order = read_feature_opts(args.model_dir)
    feats = load_features(args.data_dir, norm_vars=norm_vars, delta_order=delta_order)
    tmp = args.out_ark + ".tmp"
    with kaldiio.WriteHelper(f"ark:{tmp}") as w:
        for utt, x in feats.items():
            w(utt, gmm_loglikes(am, x))
    os.replace(tmp, args.out_ark)
    logger.info("%d utterances", len(feats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
