#!/usr/bin/env python3
"""Seed 003's Tables 1-3 in one table from this recipe's runs: test WER and
CER (greedy CTC, no LM) and speaker-verification EER per system, mean +-
std over seeds, with the paper's numbers (LibriSpeech test-other WER,
VoxCeleb1-H EER; 100k updates, 9 s speaker segments; 3 s in the short-segment rows) beside; and a plot of
WER against EER, one point per system (error bars: the std over seeds).

Usage:
  local/make_table.py [--systems "..."] [--seeds "0 1 2"] [--test test] --out FILE [--plot PNG] <exp-dir>

Reads <exp-dir>/<system>_s<seed>/decode_greedy_<test>/{wer,cer} (written by
steps/score.sh) and eer_spk_test/eer (mtlasr.bin.ivector_eer). A missing
file leaves its cell "-" and is listed under the table.
"""

import argparse
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "steps" / "libs"))
from mtlasr.scoring import read_summary  # noqa: E402

# (table, row name, paper WER, paper EER): seed 003 Tables 1-3 (100k updates;
# 9 s speaker segments, 3 s in the short-segment rows; the paper has no mixed-batch row).
ROWS = {
    "stl_speech": ("1", "STL speech", 10.04, None),
    "stl_speaker": ("1", "STL speaker", None, 4.81),
    "stl_speaker_3s": ("1", "STL speaker, short segments", None, 4.08),
    "static_050": ("1", "MTL static (lambda 0.50)", 15.45, 4.34),
    "static_eq5": ("1", "MTL static (lambda eq. 5; paper 0.88)", 10.67, 4.64),
    "dynamic": ("1", "MTL dynamic, mean pooling", 10.63, 4.23),
    "dynamic_3s": ("1", "MTL dynamic, short segments", 10.21, 8.92),
    "mixed": ("-", "MTL dynamic, mixed batches", None, None),
    "first": ("2", "first+cls pooling", 10.37, 4.41),
    "ctc_blank": ("2", "CTC-pool, blanks", 10.45, 4.53),
    "ctc_nonblank": ("2", "CTC-pool, non-blanks", 10.55, 4.47),
    "split": ("2", "explicit split (d_k = half)", 10.58, 4.54),
    "branch": ("3", "branched encoder (half the layers shared)", 10.35, 4.43),
}
EER_RE = re.compile(r"EER ([\d.]+)%")


def read_rate(path: Path):
    """Error rate (%) of a steps/score.sh summary, or None if absent."""
    r = read_summary(path)
    return None if r is None else 100.0 * r[0] / max(r[1], 1)


def read_eer(path: Path):
    """EER (%) from an ivector_eer ``eer`` file, or None if absent.

    Raises: ValueError for a file without an EER."""
    if not path.is_file():
        return None
    m = EER_RE.search(path.read_text(encoding="utf-8"))
    if m is None:
        raise ValueError(f"{path}: no 'EER x%' in it")
    return float(m.group(1))


def stats(vals):
    """(mean, std) of the values (std 0 for one; None for none)."""
    if not vals:
        return None
    return statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0


def cell(st, n):
    if st is None:
        return "-"
    return f"{st[0]:.2f}" if n == 1 else f"{st[0]:.2f} ± {st[1]:.2f}"


def paper(v):
    return "" if v is None else f" ({v:.2f})"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp_dir")
    p.add_argument("--systems", default=" ".join(ROWS))
    p.add_argument("--seeds", default="0")
    p.add_argument("--test", default="test")
    p.add_argument("--out", required=True)
    p.add_argument("--plot", default=None)
    a = p.parse_args(argv)
    exp = Path(a.exp_dir)
    seeds = a.seeds.split()
    systems = a.systems.split()
    unknown = [s for s in systems if s not in ROWS]
    if unknown:
        print(f"make_table.py: unknown system(s) {', '.join(unknown)}", file=sys.stderr)
        return 1
    lines = [f"Seed 003 Tables 1-3: test WER and CER (%, greedy CTC, no LM; {a.test}) and speaker-verification "
             f"EER (%, cosine scoring of the speaker embeddings on the trials of data/spk_test), mean ± std over "
             f"seeds {' '.join(seeds)}. In brackets: the paper (LibriSpeech test-other WER, VoxCeleb1-H EER, 100k "
             f"updates, 9 s speaker segments; 3 s in the short-segment rows).", "",
             "| table | system | WER | CER | EER |", "|---|---|---|---|---|"]
    missing, points, per_seed = [], {}, {}
    for sys_ in systems:
        table, name, p_wer, p_eer = ROWS[sys_]
        wer, cer, eer = [], [], []
        per_seed[sys_] = {}
        for s in seeds:
            d = exp / f"{sys_}_s{s}"
            for vals, path, read in ((wer, d / f"decode_greedy_{a.test}" / "wer", read_rate),
                                     (cer, d / f"decode_greedy_{a.test}" / "cer", read_rate),
                                     (eer, d / "eer_spk_test" / "eer", read_eer)):
                if (vals is wer or vals is cer) and sys_.startswith("stl_speaker"):
                    continue
                if vals is eer and sys_ == "stl_speech":
                    continue
                v = read(path)
                if v is None:
                    missing.append(str(path))
                else:
                    vals.append(v)
                    per_seed[sys_][s, "WER" if vals is wer else "CER" if vals is cer else "EER"] = v
        sw, sc, se = stats(wer), stats(cer), stats(eer)
        lines.append(f"| {table} | {name} | {cell(sw, len(wer))}{paper(p_wer)} | {cell(sc, len(cer))} | "
                     f"{cell(se, len(eer))}{paper(p_eer)} |")
        if sw and se:
            points[sys_] = (sw, se, sc)
    lines += paired(per_seed, systems, seeds)
    if missing:
        lines += ["", "Missing (not run or not finished):", *[f"- {m}" for m in missing]]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(out)
    if a.plot and points:
        plot(points, a.plot)
    return 0


def baseline_of(sys_, metric):
    """The single-task system a variant is compared with: stl_speech for
    WER and CER; for EER stl_speaker, or stl_speaker_3s for a short-segment (_3s) system."""
    if metric != "EER":
        return "stl_speech"
    return "stl_speaker_3s" if sys_.endswith("_3s") else "stl_speaker"


def paired(per_seed, systems, seeds):
    """Lines of the table of per-seed differences to the single-task
    baselines (every system of a seed starts from the same pre-trained
    network): mean +- std of the difference in points, and in how many
    seeds the variant is better (lower). Empty when no pair exists."""
    rows = []
    for sys_ in systems:
        if sys_.startswith("stl_"):
            continue
        cells, any_pair = [], False
        for metric in ("WER", "CER", "EER"):
            base = baseline_of(sys_, metric)
            d = [per_seed[sys_][s, metric] - per_seed[base][s, metric] for s in seeds
                 if (s, metric) in per_seed.get(sys_, {}) and (s, metric) in per_seed.get(base, {})]
            if not d:
                cells.append("-")
                continue
            any_pair = True
            st = stats(d)
            better = sum(x < 0 for x in d)
            cells.append(f"{st[0]:+.2f}" + (f" ± {st[1]:.2f}" if len(d) > 1 else "") + f" ({better}/{len(d)})")
        if any_pair:
            rows.append(f"| {ROWS[sys_][1]} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return ["", "Difference to the single-task baseline of the same seed (points; WER and CER against STL "
            "speech, EER against STL speaker with the same segment length), mean ± std over seeds; in "
            "brackets: in how many seeds the variant is better (lower).", "",
            "| system | ΔWER | ΔCER | ΔEER |", "|---|---|---|---|", *rows]


def plot(points, path):
    """WER and CER against EER, one point per system with std error bars."""
    from mtlasr.plot import save, subplots

    fig, axes = subplots(1, 2, figsize=(10, 4))
    for k, (ax, what) in enumerate(zip(axes, ("WER", "CER"))):
        for sys_, ((w, ws), (e, es), c) in points.items():
            y, ys = (w, ws) if k == 0 else (c if c is not None else (float("nan"), 0.0))
            ax.errorbar(e, y, xerr=es, yerr=ys, marker="o", capsize=3, label=ROWS[sys_][1])
        ax.set_xlabel("EER (%)")
        ax.set_ylabel(f"{what} (%)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    save(fig, path)


if __name__ == "__main__":
    sys.exit(main())
