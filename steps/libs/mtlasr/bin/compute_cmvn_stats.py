"""Per-speaker CMVN statistics (Kaldi layout: (2, D+1) float64 per speaker).

Usage:
  python3 -m mtlasr.bin.compute_cmvn_stats <spk2utt> <feats.scp> <out.ark> <out.scp>

  e.g.: python3 -m mtlasr.bin.compute_cmvn_stats data/train/spk2utt \\
          data/train/feats.scp mfcc/cmvn_train.ark mfcc/cmvn_train.scp

The scp is moved into place after the ark is complete. A speaker none of
whose utterances has features is an error naming the speaker.
"""

import argparse
import logging
import os
import sys

from mtlasr.datadir import read_table
from mtlasr.features import cmvn_stats

logger = logging.getLogger("compute_cmvn_stats")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spk2utt")
    p.add_argument("feats_scp")
    p.add_argument("out_ark")
    p.add_argument("out_scp")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    import kaldiio

    spk2utt = {k: v.split() for k, v in read_table(args.spk2utt).items()}
    feats = read_table(args.feats_scp)
    tmp_scp = args.out_scp + ".tmp"
    with kaldiio.WriteHelper(f"ark,scp:{args.out_ark},{tmp_scp}") as writer:
        for spk, utts in spk2utt.items():
            stats = None
            for utt in utts:
                if utt not in feats:
                    logger.warning("utterance %s of speaker %s has no features", utt, spk)
                    continue
                s = cmvn_stats(kaldiio.load_mat(feats[utt]))
                stats = s if stats is None else stats + s
            if stats is None:
                logger.error("speaker %s: no utterance has features (%s)", spk, args.feats_scp)
                os.remove(tmp_scp)
                return 1
            writer(spk, stats)
    os.replace(tmp_scp, args.out_scp)
    logger.info("CMVN stats for %d speakers", len(spk2utt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
