"""Build a lang dir (symbol tables, topology, L.fst, L_disambig.fst) from a dict dir.

Usage:
  python3 -m mtlasr.bin.prepare_lang [--num-states 3] [--num-sil-states 3] <dict-dir> <lang-dir>

  e.g.: python3 -m mtlasr.bin.prepare_lang data/local/dict data/lang

The dict dir holds lexicon.txt, nonsilence_phones.txt, silence_phones.txt
and optional_silence.txt, as in Kaldi.
"""

import argparse
import logging
import sys

from mtlasr.lang import prepare_lang

logger = logging.getLogger("prepare_lang")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-states", type=int, default=3, help="HMM states per phone (default %(default)s)")
    p.add_argument("--num-sil-states", type=int, default=3, help="HMM states of silence phones (default %(default)s)")
    p.add_argument("dict_dir")
    p.add_argument("lang_dir")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    try:
        prepare_lang(args.dict_dir, args.lang_dir, args.num_states, args.num_sil_states)
    except (OSError, ValueError) as e:
        logger.error("%s", e)
        return 1
    logger.info("wrote %s", args.lang_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
