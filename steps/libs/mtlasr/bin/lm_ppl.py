"""Perplexity and OOV rate of an ARPA LM on a Kaldi text file (via kaldingram ppl).

Usage:
  python3 -m mtlasr.bin.lm_ppl --unit word|char --space-symbol S [--vocab F --oov-word W] \\
      <lm.arpa[.gz]> <kaldi-text> <ppl-file>

  e.g.: python3 -m mtlasr.bin.lm_ppl --unit word --space-symbol "<space>" \\
          exp/lm/lm.arpa data/dev/text exp/lm/ppl_dev

The text is turned into units as mtlasr.bin.lm_text does for training.
Writes one line to <ppl-file>: ppl=.. ppl1=.. logprob=.. sentences=..
tokens=.. oov_tokens=.. oov_rate=.. skipped_sentences=.. (see
mtlasr.lm.dev_perplexity for what counts as OOV and what is skipped).
"""

import logging
import os
import sys

from mtlasr.cli import make_parser, program
from mtlasr.datadir import atomic_open
from mtlasr.lm import add_text_options, dev_perplexity, format_ppl, text_options

logger = logging.getLogger("lm_ppl")


def get_parser():
    p = make_parser(__doc__, "arpa")
    add_text_options(p)
    p.add_argument("text", help="Kaldi text file")
    p.add_argument("ppl_file", help="output: one line of key=value")
    return p


def run(args):
    work_dir = os.path.dirname(os.path.abspath(args.ppl_file))
    try:
        stats = dev_perplexity(args.arpa, args.text, work_dir=work_dir, **text_options(args))
    except RuntimeError as e:  # kaldingram ppl failed
        logger.error("%s", e)
        return 1
    line = format_ppl(stats)
    with atomic_open(args.ppl_file) as f:
        f.write(line + "\n")
    logger.info("%s: %s", args.text, line)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
