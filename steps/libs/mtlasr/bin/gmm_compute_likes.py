"""Per-pdf GMM log-likelihoods of a data dir's features, as a Kaldi matrix ark.

Usage:
  python3 -m mtlasr.bin.gmm_compute_likes <model-dir> <data-dir> <out.ark>

  e.g.: python3 -m mtlasr.bin.gmm_compute_likes exp/mono data/dev/split2/1 exp/mono/decode_dev/loglikes.1.ark

Features are prepared as for the model: its ``cmvn_opts`` and ``delta_order``
files are read back from <model-dir>. Each matrix is ``(T, num_pdfs) float32``.
"""

import logging
import sys
from pathlib import Path

from mtlasr.cli import ark_writer, make_parser, program
from mtlasr import gmm
from mtlasr.decode import gmm_loglikes
from mtlasr.features import load_features, read_feature_opts

logger = logging.getLogger("gmm_compute_likes")


def get_parser():
    p = make_parser(__doc__, "model_dir", "data_dir", "out_ark")
    return p


def run(args):

    _, _, am = gmm.load_model(Path(args.model_dir) / "final.mdl")
    norm_vars, delta_order = read_feature_opts(args.model_dir)
    feats = load_features(args.data_dir, norm_vars=norm_vars, delta_order=delta_order)
    with ark_writer(args.out_ark) as w:
        for utt, x in feats.items():
            w(utt, gmm_loglikes(am, x))
    logger.info("%d utterances", len(feats))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
