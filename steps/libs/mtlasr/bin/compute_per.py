"""Usage: python3 -m mtlasr.bin.compute_per [options] <ref-text> <hyp-text> <out-dir>

Compute the phone error rate PER = (S+D+I)/N * 100 of a hypothesis phone
transcript against a reference one (both Kaldi text files), optionally
folding both to the 39-phone scoring set of Lee & Hon (1989) first.
Writes <out-dir>/per, per_spk and per_utt and prints the %PER line.

Options:
  --phone-map MAP         60/48/39 phone map; fold ref and hyp to column 39
  --map-from 48|60        which map column the transcripts use (default 48)
  --utt2spk FILE          speaker table for per_spk (default: speaker = utt)
  --mode all|present|strict   handling of utterances with no hypothesis

Example:
  PYTHONPATH=steps/libs python3 -m mtlasr.bin.compute_per \\
      --phone-map ../shared/data/timit_lists/phones.60-48-39.map \\
      --utt2spk data/test/utt2spk data/test/text exp/mono/decode_test/hyp.txt \\
      exp/mono/decode_test/scoring
"""

import argparse
import logging
import sys

from mtlasr import scoring

_COLS = {"60": 0, "48": 1}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m mtlasr.bin.compute_per",
        description="Phone error rate scoring (TIMIT 39-phone folding).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--phone-map", default=None,
                        help="phone map 'timit60 train48 score39'; if given, ref and hyp "
                             "are folded to the 39-phone set before alignment")
    parser.add_argument("--map-from", choices=sorted(_COLS), default="48",
                        help="phone set (map column) of ref and hyp")
    parser.add_argument("--utt2spk", default=None,
                        help="utt2spk file for the per-speaker table")
    parser.add_argument("--mode", choices=["all", "present", "strict"], default="all",
                        help="missing hypotheses: all=score as empty, present=skip, strict=error")
    parser.add_argument("ref_text", help="reference Kaldi text file")
    parser.add_argument("hyp_text", help="hypothesis Kaldi text file")
    parser.add_argument("out_dir", help="output directory for per, per_spk, per_utt")
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s compute_per: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        refs = scoring.read_text(args.ref_text)
        hyps = scoring.read_text(args.hyp_text)
        if args.phone_map:
            mapping = scoring.read_phone_map(args.phone_map, _COLS[args.map_from], 2)
            refs = {u: scoring.fold(s, mapping, f"{args.ref_text}: {u}") for u, s in refs.items()}
            hyps = {u: scoring.fold(s, mapping, f"{args.hyp_text}: {u}") for u, s in hyps.items()}
        utt2spk = scoring.read_utt2spk(args.utt2spk) if args.utt2spk else None
        result = scoring.score(refs, hyps, utt2spk, args.mode)
        line = scoring.write_report(result, args.out_dir, args.hyp_text)
    except (ValueError, KeyError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        logging.error("%s", msg)
        return 1
    print(line)
    logging.info("wrote %s/{per,per_spk,per_utt} (%d utterances)", args.out_dir, len(result.per_utt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
