"""Convert an ARPA language model into G.fst for a lang dir (via kaldilm).

Usage:
  python3 -m mtlasr.bin.arpa_to_g <lm.arpa> <words.txt> <G.fst>

  e.g.: python3 -m mtlasr.bin.arpa_to_g data/local/lm/phone_bg.arpa \\
          data/lang_test_bg/words.txt data/lang_test_bg/G.fst

Backoff arcs carry the disambiguation symbol #0; <s> and </s> become
epsilons. Runs in its own process: importing kaldilm before kaldifst or
kaldi_hmm_gmm in one process hangs.
"""

import argparse
import logging
import os
import sys

logger = logging.getLogger("arpa_to_g")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arpa")
    p.add_argument("words")
    p.add_argument("g_fst")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    import kaldilm

    for f in (args.arpa, args.words):
        if not os.path.isfile(f):
            logger.error("%s does not exist", f)
            return 1
    tmp = args.g_fst + ".tmp"
    kaldilm.arpa2fst(input_arpa=args.arpa, output_fst=tmp, disambig_symbol="#0",
                     read_symbol_table=args.words, ilabel_sort=True, max_arpa_warnings=-1)
    os.replace(tmp, args.g_fst)
    logger.info("wrote %s", args.g_fst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
