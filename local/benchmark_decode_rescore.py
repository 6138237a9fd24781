#!/usr/bin/env python3
"""Benchmark of the LM-weight sweep: decoding once and rescoring lattices
(``--rescore true``) against decoding once per LM weight (``--rescore
false``), on the log-likelihoods of an existing decode dir.

Usage:
  local/benchmark_decode_rescore.py [options] <trans-model> <graph-dir> <decode-dir> <ref-text>

  e.g.: local/benchmark_decode_rescore.py --metric per --token-map data/local/phones.48-39.map \\
          exp/mono/final.mdl exp/mono/graph exp/lstm/decode_dev data/dev/text
        local/benchmark_decode_rescore.py --lmwts "7 9 11 13 15 17" --word-ins-penalties "0.0 1.0" \\
          exp/mono/final.mdl exp/mono/graph exp/mono/decode_test data/test/text

Runs ``python3 -m mtlasr.bin.decode_loglikes`` in this process both ways on
every ``<decode-dir>/loglikes.*.ark`` (one job each, one after the other,
one thread), writing into a temporary directory (the decode dir is only
read). Prints: the wall and CPU time of each sweep and their ratios (the
CPU time of this process moves less with the load of the machine); per (LM weight, penalty), how many hypotheses are
identical and the error rate of each (mtlasr.scoring, as steps/score.sh);
and the pair each way would choose (lowest error rate; ties: the smaller
LM weight, then penalty). The sweep and beams default to steps/decode.sh's
defaults, repeated here as the measurement's fixed setting. The programs'
log lines (stderr) give the lattices' LM weights and sizes.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "steps" / "libs"))

from mtlasr import scoring  # noqa: E402
from mtlasr.bin import decode_loglikes  # noqa: E402
from mtlasr.decode import parse_lmwts, parse_penalties, scoring_dir_name  # noqa: E402


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lmwts", default="0.5 0.75 1 1.5 2 3 4 5 6 8 10 12", help="default: %(default)s")
    p.add_argument("--word-ins-penalties", default="0.0", help="default: %(default)s")
    p.add_argument("--lattice-lmwts", default="", help="default: one, the middle of --lmwts")
    p.add_argument("--beam", type=float, default=13.0, help="default: %(default)s")
    p.add_argument("--max-active", type=int, default=7000, help="default: %(default)s")
    p.add_argument("--lattice-beam", type=float, default=6.0, help="default: %(default)s")
    p.add_argument("--metric", default="wer", choices=scoring.METRICS, help="default: %(default)s")
    p.add_argument("--token-map", default=None, help="map file for scoring (default: none)")
    p.add_argument("trans_model")
    p.add_argument("graph_dir")
    p.add_argument("decode_dir")
    p.add_argument("ref_text")
    return p


def sweep(args, arks, out_dir, rescore):
    """Run decode_loglikes on every ark; return (wall, CPU) seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    for job, ark in enumerate(arks, 1):
        rc = decode_loglikes.main([
            "--lmwts", args.lmwts, "--word-ins-penalties", args.word_ins_penalties,
            "--rescore", rescore, "--lattice-lmwts", args.lattice_lmwts, "--beam", str(args.beam),
            "--max-active", str(args.max_active), "--lattice-beam", str(args.lattice_beam),
            args.trans_model, args.graph_dir, str(ark), str(out_dir), str(job)])
        if rc != 0:
            raise SystemExit(f"decode_loglikes failed on {ark} (--rescore {rescore})")
    return time.perf_counter() - t0, time.process_time() - c0


def read_hyps(out_dir, pair, njobs):
    hyps = {}
    for job in range(1, njobs + 1):
        path = Path(out_dir) / "scoring" / scoring_dir_name(*pair) / f"hyp.{job}.tra"
        for line in path.read_text().splitlines():
            utt, *words = line.split()
            hyps[utt] = words
    return hyps


def main(argv=None):
    args = get_parser().parse_args(argv)
    arks = sorted(Path(args.decode_dir).glob("loglikes.*.ark"), key=lambda p: int(p.name.split(".")[1]))
    if not arks:
        raise SystemExit(f"{args.decode_dir}: no loglikes.*.ark")
    pairs = [(w, p) for p in parse_penalties(args.word_ins_penalties) for w in parse_lmwts(args.lmwts)]
    mapping = scoring.read_token_map(args.token_map) if args.token_map else None

    def norm(table, name):
        return {u: scoring.normalize(t, f"{name}: utterance {u}", args.metric, mapping)
                for u, t in table.items()}

    refs = norm(scoring.read_text(args.ref_text), args.ref_text)
    with tempfile.TemporaryDirectory(prefix="rescore_bench.") as tmp:
        t_old = sweep(args, arks, Path(tmp) / "redecode", "false")
        t_new = sweep(args, arks, Path(tmp) / "rescore", "true")
        rows, best = [], {}
        for pair in pairs:
            old = read_hyps(Path(tmp) / "redecode", pair, len(arks))
            new = read_hyps(Path(tmp) / "rescore", pair, len(arks))
            same = sum(old[u] == new[u] for u in old)
            rates = []
            for name, hyps in (("redecode", old), ("rescore", new)):
                res = scoring.score({u: refs[u] for u in hyps}, norm(hyps, name))
                rates.append(res.total.rate)
                key = (res.total.rate, float(pair[0]), float(pair[1]))
                best[name] = min(best.get(name, (key, pair)), (key, pair))
            rows.append((pair, same, len(old), *rates))
    n = rows[0][2]
    metric = args.metric.upper()
    print(f"decode dir {args.decode_dir}: {n} utterances, {len(pairs)} (LM weight, penalty) pairs, "
          f"beam {args.beam}, lattice beam {args.lattice_beam}")
    print(f"re-decoding per pair (lattice-faster, max-active {args.max_active}): "
          f"wall {t_old[0]:.2f} s, CPU {t_old[1]:.2f} s")
    print(f"decoding once + rescoring (lattice-simple, lattice LM weight(s) "
          f"{args.lattice_lmwts or 'the middle of the sweep'}): wall {t_new[0]:.2f} s, CPU {t_new[1]:.2f} s; "
          f"ratio: wall {t_old[0] / t_new[0]:.2f}, CPU {t_old[1] / t_new[1]:.2f}")
    print(f"{'lmwt':>6} {'wip':>5} {'identical':>10} {metric + ' redecode':>14} {metric + ' rescore':>13}")
    for (w, p), same, total, r_old, r_new in rows:
        print(f"{w:>6} {p:>5} {same:>5}/{total:<4} {r_old:>14.2f} {r_new:>13.2f}")
    for name in ("redecode", "rescore"):
        (rate, _, _), (w, p) = best[name]
        print(f"best pair by {name}: LM weight {w}, penalty {p}: {metric} {rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
