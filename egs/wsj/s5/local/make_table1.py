#!/usr/bin/env python3
"""Seed 002's Table 1 from this recipe's decodes: LER and WER (%) on dev and
test, one row per system, mean +- std over seeds, with the paper's numbers
(WSJ Nov'93 dev / Nov'92 eval) beside; and the speaker-probe accuracies
per layer (Fig. 2) when the probe ran.

Usage:
  local/make_table1.py [--systems "..."] [--seeds "0 1 2"] [--dev dev] [--test test] \\
      [--probe exp/probe_spk_s0] --out FILE <exp-dir>

Reads <exp-dir>/ctc_<system>_s<seed>/decode_greedy_<set>/cer (LER: letters,
word boundaries not counted; greedy CTC decoding, no LM) and
decode_word_<set>/wer (lexicon + word n-gram; the test set uses the LM
weight and word score chosen on dev), as written by steps/score.sh
(``%CER x [ E / N, ... ]``). A missing score leaves its cell "-" and is
listed under the table.
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "steps" / "libs"))
from mtlasr.scoring import read_summary  # noqa: E402

# Seed 002 Table 1 (LER / WER on Nov'93 dev and Nov'92 eval).
PAPER = {
    "base": (7.2, 9.7, 4.9, 5.9),
    "mt_in": (7.2, 9.9, 4.8, 5.8), "mt_mid": (7.3, 9.8, 4.9, 5.9), "mt_out": (7.3, 10.1, 4.8, 5.7),
    "al_in": (7.2, 9.9, 4.7, 5.7), "al_mid": (7.3, 10.0, 4.8, 5.8), "al_out": (7.2, 9.8, 4.7, 5.6),
    "semi_in": (6.8, 9.8, 4.6, 6.2), "semi_mid": (6.8, 9.7, 4.7, 6.0), "semi_out": (6.9, 10.0, 4.6, 6.3),
}
ROWS = {"base": "Baseline", "mt_in": "Mult. IN", "mt_mid": "Mult. MID", "mt_out": "Mult. OUT",
        "al_in": "Adv. IN", "al_mid": "Adv. MID", "al_out": "Adv. OUT",
        "semi_in": "Semi. IN", "semi_mid": "Semi. MID", "semi_out": "Semi. OUT"}
def read_rate(path: Path):
    """Error rate (%) of a steps/score.sh summary file, or None if absent."""
    r = read_summary(path)
    return None if r is None else 100.0 * r[0] / max(r[1], 1)


def cell(vals):
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"


def probe_lines(probe_dir: Path):
    """The probe's table (probe.md without its title) and a link to its plot."""
    md = probe_dir / "probe.md"
    if not md.is_file():
        return []
    body = [l for l in md.read_text(encoding="utf-8").splitlines() if not l.startswith("# ")]
    return ["", f"Speaker probe per layer (Fig. 2; {probe_dir}/probe.png):", *body]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp_dir")
    p.add_argument("--systems", default=" ".join(ROWS))
    p.add_argument("--seeds", default="0")
    p.add_argument("--dev", default="dev")
    p.add_argument("--test", default="test")
    p.add_argument("--probe", default=None, help="probe_layers output dir (probe.md)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    seeds = a.seeds.split()
    exp = Path(a.exp_dir)
    missing = []
    lines = [f"LER and WER (%), mean ± std over seeds {', '.join(seeds)}; in brackets seed 002 Table 1 "
             f"(WSJ: Nov'93 dev, Nov'92 eval). LER: greedy CTC output, letters only; WER: lexicon + word "
             f"n-gram, LM weight and word score chosen on {a.dev}.", "",
             f"| system | {a.dev} LER | {a.dev} WER | {a.test} LER | {a.test} WER |",
             "|---|---|---|---|---|"]
    for sys_ in a.systems.split():
        if sys_ not in ROWS:
            raise SystemExit(f"make_table1.py: unknown system '{sys_}'")
        cols = []
        for s, kind, metric in ((a.dev, "greedy", "cer"), (a.dev, "word", "wer"),
                                (a.test, "greedy", "cer"), (a.test, "word", "wer")):
            vals = []
            for seed in seeds:
                f = exp / f"ctc_{sys_}_s{seed}" / f"decode_{kind}_{s}" / metric
                r = read_rate(f)
                if r is None:
                    missing.append(str(f))
                else:
                    vals.append(r)
            cols.append(vals)
        paper = PAPER[sys_]
        lines.append(f"| {ROWS[sys_]} | " + " | ".join(f"{cell(v)} ({pv})" for v, pv in zip(cols, paper)) + " |")
    if missing:
        lines += ["", "Missing scores: " + ", ".join(missing)]
    if a.probe:
        lines += probe_lines(Path(a.probe))
    Path(a.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
