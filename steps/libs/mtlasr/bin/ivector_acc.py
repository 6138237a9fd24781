"""Accumulate i-vector extractor EM statistics on a data dir.

Usage:
  python3 -m mtlasr.bin.ivector_acc [options] <extractor> <data-dir> <posteriors.npz> <out.acc>

  e.g.: python3 -m mtlasr.bin.ivector_acc exp/ivector_extractor/3.ie data/train/split4/1 \\
          exp/ivector_extractor/post.1.npz exp/ivector_extractor/acc.3.1

Kaldi's ivector-extractor-acc-stats: Baum-Welch statistics of each
utterance from the fixed UBM posteriors (mtlasr.bin.ubm_select --full-ubm),
the posterior of its i-vector, and the M-step statistics
(mtlasr.ivector.IvectorExtractorAcc), processed in batches of utterances.
Features are prepared as recorded in the extractor's directory. Logs the
log-likelihood per frame (w integrated out) and frames per second.
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from mtlasr import ivector

logger = logging.getLogger("ivector_acc")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=64, help="utterances per batch (default %(default)s)")
    p.add_argument("extractor")
    p.add_argument("data_dir")
    p.add_argument("posteriors")
    p.add_argument("out_acc")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    ie = ivector.IvectorExtractor.load(args.extractor)
    norm_vars, delta_order = ivector.read_feature_opts(Path(args.extractor).parent)
    cmvn_mode = ivector.read_cmvn_mode(Path(args.extractor).parent)
    posts = ivector.load_selection(args.posteriors)
    acc = ivector.IvectorExtractorAcc.for_extractor(ie)
    skipped = []
    speed = ivector.Throughput()
    batch = []

    def flush():
        gamma = np.stack([b[0] for b in batch])
        f = np.stack([b[1] for b in batch])
        s_sum = sum(b[2] for b in batch)
        acc.accumulate(ie, gamma, f, s_sum, sum(b[3] for b in batch))
        batch.clear()

    try:
        for utt, x in ivector.iter_features(args.data_dir, norm_vars, delta_order, dim=ie.feat_dim,
                                            skipped=skipped, cmvn_mode=cmvn_mode):
            if utt not in posts or posts[utt][1] is None:
                raise KeyError(f"{args.posteriors}: no posteriors for utterance {utt}")
            idx, post = posts[utt]
            if idx.shape[0] != x.shape[0]:
                raise ValueError(f"utterance {utt}: {x.shape[0]} frames but posteriors for {idx.shape[0]} "
                                 f"({args.posteriors})")
            gamma, f, s = ivector.utterance_stats(x, idx, post, ie.num_gauss, second_order=True)
            batch.append((gamma, f, s, x.shape[0]))
            speed.add(x.shape[0])
            if len(batch) >= args.batch_size:
                flush()
        if batch:
            flush()
    except (ValueError, KeyError, FileNotFoundError) as e:
        logger.error("%s", e)
        return 1
    if acc.count == 0:
        logger.error("%s: no utterance with frames", args.data_dir)
        return 1
    acc.save(args.out_acc)
    logger.info("%s; %d skipped; log-likelihood per frame %.4f", speed, len(skipped), acc.objf_per_frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())
