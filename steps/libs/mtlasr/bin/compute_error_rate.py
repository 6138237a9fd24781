"""Word, phone or character error rate of a hypothesis text against a reference text.

Usage:
  python3 -m mtlasr.bin.compute_error_rate [options] <ref-text> <hyp-text> <out-dir>

  e.g.: python3 -m mtlasr.bin.compute_error_rate --metric wer --ignore "<noise> <unk>" \\
          --utt2spk data/test/utt2spk data/test/text exp/tri/decode_test/scoring/10_0.0/hyp.txt \\
          exp/tri/decode_test/scoring/10_0.0

Both files are Kaldi text tables (``utt tok1 tok2 ...``). Tokens in --ignore
are removed, then (with --token-map) every token is mapped and must be in the
map, then for --metric cer each word is split into characters (spaces are not
counted). ER = (S + D + I) / N * 100 from a minimum edit-distance alignment
(see mtlasr.scoring). Writes <out-dir>/<metric>, <metric>_spk and <metric>_utt
and prints the summary line, e.g.
  %WER 31.25 [ 100 / 320, 20 ins, 30 del, 50 sub ] <hyp-text>
"""

import argparse
import logging
import sys

from mtlasr.cli import make_parser, program
from mtlasr import scoring

logger = logging.getLogger("compute_error_rate")


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    scoring.add_metric_option(parser, "error rate to compute; names the output files")
    parser.add_argument("--token-map", default=None,
                        help="map file, lines 'src dst' or 'src' (token deleted); every "
                             "token of ref and hyp must be in it (default: no map)")
    parser.add_argument("--ignore", default="",
                        help="space-separated tokens removed from ref and hyp before "
                             "alignment (default: none)")
    parser.add_argument("--utt2spk", default=None,
                        help="utt2spk file for the per-speaker table (default: speaker = utt)")
    parser.add_argument("--mode", choices=scoring.MODES, default=scoring.DEFAULT_MODE,
                        help="utterances with no hypothesis: all=score as empty, present=skip, "
                             "strict=error (default %(default)s)")
    parser.add_argument("ref_text", help="reference Kaldi text file")
    parser.add_argument("hyp_text", help="hypothesis Kaldi text file")
    parser.add_argument("out_dir", help="output directory for <metric>, <metric>_spk, <metric>_utt")
    return parser


def run(args):
    result = scoring.score_files(args.ref_text, args.hyp_text, args.metric, args.token_map,
                                 args.ignore.split(), args.utt2spk, args.mode)
    line = scoring.write_report(result, args.out_dir, args.hyp_text, args.metric)
    print(line)
    logger.info("wrote %s/{%s,%s_spk,%s_utt} (%d utterances)", args.out_dir, args.metric,
                args.metric, args.metric, len(result.per_utt))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
