#!/usr/bin/env python3
"""Seed 004's Table 3 from this recipe's decodes: test PER (%) per language
and over all languages, one row per system, mean +- std over seeds, with
the paper's numbers (GlobalPhone / TED / CSJ, 17 h per language) beside.

Usage:
  local/make_table3.py [--languages en,de,es,it] [--systems "..."] [--seeds "0 1 2"] --out FILE <exp-dir>

Reads <exp-dir>/ctc_<system>_s<seed>/decode_test_<lang>/per (``%PER x [ E /
N, ... ]``, written by steps/score.sh with the LM weight chosen on dev);
the mono system's model of language l is ctc_mono_<l>_s<seed>. "all" pools
the errors and reference phones of the languages. A missing decode leaves
its cell empty ("-") and is listed under the table.
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "steps" / "libs"))
from mtlasr.scoring import read_summary  # noqa: E402

# Seed 004 Table 3, test PER (%) of the languages this corpus shares with
# the paper (English from TED, German and Spanish from GlobalPhone; the
# paper has no Italian) and of its "All languages" (its six: cs, en, fr,
# de, ja, es), rows with the GRL.
PAPER = {
    "mono": {"en": 26.8, "de": 21.0, "es": 13.2, "all": 18.0},
    "multi": {"en": 27.4, "de": 22.2, "es": 13.3, "all": 19.4},
    "multi_lr": {"en": 23.6, "de": 19.3, "es": 11.7, "all": 16.4},
    "multi_sr": {"en": 24.0, "de": 19.5, "es": 11.7, "all": 16.5},
    "multi_lr_sr": {"en": 23.0, "de": 19.0, "es": 11.2, "all": 16.1},
}
ROWS = {"mono": "Baseline (monolingual)", "multi": "CTC pre-train (multilingual)",
        "multi_cont": "pre-train + more epochs (control)", "multi_lr": "ASR+LR (GRL)",
        "multi_sr": "ASR+SR (GRL)", "multi_lr_sr": "ASR+LR+SR (GRL)"}
def cell(vals):
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp_dir")
    p.add_argument("--languages", default="en,de,es,it")
    p.add_argument("--systems", default="mono multi multi_cont multi_lr multi_sr multi_lr_sr")
    p.add_argument("--seeds", default="0")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    langs = a.languages.split(",")
    seeds = a.seeds.split()
    exp = Path(a.exp_dir)
    missing = []
    lines = [f"Test PER (%) per language, mean ± std over seeds {', '.join(seeds)}; "
             f"in brackets seed 004 Table 3 (GlobalPhone/TED, 17 h per language; its 'all' is over "
             f"cs, en, fr, de, ja, es).", "",
             "| system | " + " | ".join(langs + ["all"]) + " |",
             "|---" * (len(langs) + 2) + "|"]
    for sys_ in a.systems.split():
        per_lang = {l: [] for l in langs + ["all"]}
        for seed in seeds:
            tot_e = tot_n = 0
            complete = True
            for l in langs:
                d = exp / (f"ctc_mono_{l}_s{seed}" if sys_ == "mono" else f"ctc_{sys_}_s{seed}") / f"decode_test_{l}"
                r = read_summary(d / "per")
                if r is None:
                    missing.append(str(d / "per"))
                    complete = False
                    continue
                per_lang[l].append(100.0 * r[0] / max(r[1], 1))
                tot_e, tot_n = tot_e + r[0], tot_n + r[1]
            if complete:
                per_lang["all"].append(100.0 * tot_e / max(tot_n, 1))
        paper = PAPER.get(sys_, {})
        cells = [cell(per_lang[l]) + (f" ({paper[l]})" if l in paper else "") for l in langs + ["all"]]
        lines.append(f"| {ROWS[sys_]} | " + " | ".join(cells) + " |")
    if missing:
        lines += ["", "Missing decodes: " + ", ".join(missing)]
    Path(a.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
