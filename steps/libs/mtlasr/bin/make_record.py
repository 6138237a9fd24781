"""Print the record of what a step's output is made from (mtlasr.provenance).

Usage:
  python3 -m mtlasr.bin.make_record [options] <step-script> [<input> ...]

  e.g.: python3 -m mtlasr.bin.make_record --options "nj=4 config=conf/mfcc.conf" \\
          --audio data/train/wav.scp steps/make_mfcc.sh conf/mfcc.conf

Writes the record on stdout: ``code``, ``options``, one ``input`` line per
input file or directory, one ``audio`` line per --audio wav.scp, one
``tree`` line per --tree directory. Steps call
it through utils/lib.sh (step_record) and compare the result with the
record their output dir holds.
"""

import logging
import os
import sys
from pathlib import Path

from mtlasr.cli import make_parser, program
from mtlasr.provenance import make_record

logger = logging.getLogger("make_record")


def get_parser():
    p = make_parser(__doc__, "step")
    p.add_argument("inputs", nargs="*", help="input files or directories")
    p.add_argument("--options", default="", help="the options that change the output")
    p.add_argument("--audio", action="append", default=[], help="a wav.scp whose audio files are inputs")
    p.add_argument("--tree", action="append", default=[],
                   help="a directory whose files are inputs by size and time (e.g. a corpus)")
    p.add_argument("--root", default=os.environ.get("MTL_ROOT", "."),
                   help="the toolkit's top directory (default: $MTL_ROOT)")
    return p


def run(args):
    sys.stdout.write(make_record(args.step, Path(args.root), args.options, args.inputs, args.audio, args.tree))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger, level=logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
