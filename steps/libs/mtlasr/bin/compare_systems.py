"""Paired bootstrap significance test of two decodes of the same test set.

Usage:
  python3 -m mtlasr.bin.compare_systems [options] <decode-dir-A> <decode-dir-B>

  e.g.: python3 -m mtlasr.bin.compare_systems --metric per --json exp/cmp/lstm_vs_mtl.json \\
          exp/lstm/decode_test exp/lstm_mtl/decode_test

Reads <dir>/<metric>_utt of both decode dirs (written by steps/score.sh),
which must cover the same utterances with the same references, and prints
each system's error rate with its bootstrap interval, the difference B - A
with its interval, the probability that B is better than A and a two-sided
p-value (Bisani and Ney, 2004; formulas in mtlasr.significance).
"""

import argparse
import json
import logging
import os
import sys

from mtlasr.cli import make_parser, program
from mtlasr import scoring, significance
from mtlasr.datadir import atomic_open

logger = logging.getLogger("compare_systems")


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    scoring.add_metric_option(parser, "which <metric>_utt file to read")
    parser.add_argument("--num-samples", type=int, default=significance.DEFAULT_NUM_SAMPLES,
                        help="bootstrap resamples (default %(default)s)")
    parser.add_argument("--seed", type=int, default=significance.DEFAULT_SEED,
                        help="seed of the resampling (default %(default)s)")
    parser.add_argument("--level", type=float, default=significance.DEFAULT_LEVEL,
                        help="confidence level of the intervals (default %(default)s)")
    parser.add_argument("--json", default=None,
                        help="also write the numbers to this JSON file (default: none)")
    parser.add_argument("dir_a", help="decode dir of system A (the baseline)")
    parser.add_argument("dir_b", help="decode dir of system B")
    return parser


def run(args):
    counts = [significance.read_utt_counts(os.path.join(d, f"{args.metric}_utt")) for d in (args.dir_a, args.dir_b)]
    result = significance.compare(counts[0], counts[1], args.num_samples, args.seed,
                                  args.level, names=(args.dir_a, args.dir_b))
    if args.json:
        record = {"metric": args.metric, "system_a": args.dir_a, "system_b": args.dir_b, **result.to_dict()}
        with atomic_open(args.json) as f:
            json.dump(record, f, indent=2)
            f.write("\n")
    sys.stdout.write(significance.format_report(result, args.dir_a, args.dir_b, args.metric))
    if args.json:
        logger.info("wrote %s", args.json)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
