"""Per-speaker CMVN statistics (Kaldi layout: (2, D+1) float64 per speaker).

Usage:
  python3 -m mtlasr.bin.compute_cmvn_stats <spk2utt> <feats.scp> <out.ark> <out.scp>

  e.g.: python3 -m mtlasr.bin.compute_cmvn_stats data/train/spk2utt \\
          data/train/feats.scp mfcc/cmvn_train.ark mfcc/cmvn_train.scp

The scp is moved into place after the ark is complete. A speaker none of
whose utterances has features is an error naming the speaker.
"""

import logging
import sys

from mtlasr.cli import ark_writer, make_parser, program
from mtlasr.datadir import read_table
from mtlasr.features import cmvn_stats

logger = logging.getLogger("compute_cmvn_stats")


def get_parser():
    p = make_parser(__doc__, "spk2utt", "feats_scp", "out_ark", "out_scp")
    return p


def run(args):
    import kaldiio

    spk2utt = {k: v.split() for k, v in read_table(args.spk2utt).items()}
    feats = read_table(args.feats_scp)
    with ark_writer(args.out_ark, args.out_scp) as writer:
        for spk, utts in spk2utt.items():
            stats = None
            for utt in utts:
                if utt not in feats:
                    logger.warning("utterance %s of speaker %s has no features", utt, spk)
                    continue
                s = cmvn_stats(kaldiio.load_mat(feats[utt]))
                stats = s if stats is None else stats + s
            if stats is None:
                raise ValueError(f"speaker {spk}: no utterance has features ({args.feats_scp})")
            writer(spk, stats)
    logger.info("CMVN stats for %d speakers", len(spk2utt))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
