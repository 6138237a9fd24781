#!/usr/bin/env python3
"""PER table of groups of systems (one system per seed): mean and standard
deviation over seeds of dev and test PER, relative improvement over a
baseline group with its significance, and training cost (seconds per epoch).

Usage:
  local/make_mtl_table.py [options] <out.md> <label>=<prefix> [<label>=<prefix> ...]

  e.g.: local/make_mtl_table.py --seeds "1 2 3" --baseline "STL" exp/table2/table2.md \\
          "STL=t2_base" "speaker classification=t2_spk" "i-vector regression=t2_ivector"

A group's systems are exp/<prefix>_s<seed>, scored by local/score.sh. The
relative improvement is (PER(baseline) - PER(group)) / PER(baseline) on
the means, positive is better (seed 000 Table 2). Its significance is a
paired bootstrap over utterances (Bisani and Ney, 2004; mtlasr.significance):
each utterance's errors are summed over the seeds both groups have, and the
two-sided p-value of "no difference" is given; a * marks p < 0.05. The seconds per epoch
are the mean over the group's epochs (history.json), so the cost of a head
is its group's figure minus the baseline's, when the systems ran under the
same load. With --speed, also the training labels per second (labelled
frames over the training seconds, all epochs; history.json) and its ratio
to the baseline's. With --results FILE the table replaces the block between
``<!-- <name>:begin -->`` and ``<!-- <name>:end -->`` (appended if missing),
name = --block.
"""

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

import numpy as np

from mtlasr.significance import compare, read_utt_counts

logger = logging.getLogger("make_mtl_table")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="1 2 3")
    p.add_argument("--baseline", default=None, help="label of the baseline group (default: the first)")
    p.add_argument("--exp", default="exp")
    p.add_argument("--command", default=None, help="the command behind the systems, printed under the table")
    p.add_argument("--results", default=None, help="Markdown file to write the table into")
    p.add_argument("--block", default="table", help="name of the block in --results")
    p.add_argument("--speed", action="store_true", help="also a column of training labels per second")
    p.add_argument("out")
    p.add_argument("groups", nargs="+", metavar="LABEL=PREFIX")
    return p


def read_per(path):
    m = re.match(r"%PER ([\d.]+) ", Path(path).read_text())
    if not m:
        raise ValueError(f"{path}: not a PER line")
    return float(m.group(1))


def collect(exp, prefix, seeds):
    """[(seed, dev PER, test PER, s/epoch, dev counts, test counts, labels/s)]
    of exp/<prefix>_s<seed> that are scored; counts: utterance -> ErrorCounts
    (the decode dir's per_utt); labels/s: labelled training frames over the
    training seconds of all epochs."""
    rows = []
    for s in seeds:
        d = Path(exp) / f"{prefix}_s{s}"
        dev, test = d / "decode_dev", d / "decode_test"
        if not all((x / f).is_file() for x in (dev, test) for f in ("per", "per_utt")):
            logger.warning("%s: not scored; left out", d)
            continue
        spe = lps = float("nan")
        if (d / "history.json").is_file():
            hist = json.loads((d / "history.json").read_text())
            spe = float(np.mean([r["seconds"] for r in hist]))
            lps = sum(r["train_frames"] for r in hist) / max(sum(r["seconds"] for r in hist), 1e-9)
        rows.append((s, read_per(dev / "per"), read_per(test / "per"), spe,
                     read_utt_counts(dev / "per_utt"), read_utt_counts(test / "per_utt"), lps))
    return rows


def significance(base, rows, k):
    """Two-sided bootstrap p-value of base vs rows on set k (4: dev, 5:
    test), per-utterance errors summed over the seeds both have; None if
    they share no seed."""
    seeds = sorted({r[0] for r in base} & {r[0] for r in rows})
    if not seeds:
        return None
    by_seed = [(dict((r[0], r[k]) for r in base)[s], dict((r[0], r[k]) for r in rows)[s]) for s in seeds]
    pooled = []
    for side in (0, 1):
        total = {}
        for pair in by_seed:
            for utt, c in pair[side].items():
                total[utt] = total[utt] + c if utt in total else c
        pooled.append(total)
    return compare(pooled[0], pooled[1]).p_value


def rel_sig(base, rows, k):
    """Relative improvement of set k (1 dev, 2 test) with a * when the
    bootstrap p-value is below 0.05, and the p-value."""
    r = rel([x[k] for x in base], [x[k] for x in rows])
    p = significance(base, rows, k + 3)
    if p is None:
        return r, "-"
    return (r + ("*" if p < 0.05 else "")), f"{p:.3f}"


def fmt(v):
    if not v:
        return "-"
    return f"{v[0]:.2f}" if len(v) == 1 else f"{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}"


def rel(base, v):
    if not base or not v:
        return "-"
    return f"{100 * (np.mean(base) - np.mean(v)) / np.mean(base):+.1f}"


def write_into(results, name, block):
    p = Path(results)
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = p.read_text() if p.is_file() else ""
    new = f"{begin}\n{block}{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + new + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, p)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    seeds = args.seeds.split()
    groups = []
    for g in args.groups:
        if "=" not in g:
            logger.error("group %r is not LABEL=PREFIX", g)
            return 1
        label, prefix = g.rsplit("=", 1)
        groups.append((label, collect(args.exp, prefix, seeds)))
    base_label = args.baseline or groups[0][0]
    base = dict(groups).get(base_label)
    if base is None:
        logger.error("baseline %r is not one of the groups", base_label)
        return 1
    bspe = [r[3] for r in base if np.isfinite(r[3])]
    blps = [r[6] for r in base if np.isfinite(r[6])]
    lines = ["| system | seeds | dev PER % | test PER % | rel. impr. dev % | rel. impr. test % | p dev / test "
             "| s/epoch |" + (" labels/s |" if args.speed else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|" if args.speed else "")]
    for label, rows in groups:
        dev, test = [r[1] for r in rows], [r[2] for r in rows]
        spe = [r[3] for r in rows if np.isfinite(r[3])]
        is_base = label == base_label
        cost = f"{np.mean(spe):.1f}" if spe else "-"
        if spe and bspe and not is_base:
            cost += f" ({np.mean(spe) - np.mean(bspe):+.1f})"
        if is_base:
            rdev = rtest = pdev = ptest = "-"
        else:
            (rdev, pdev), (rtest, ptest) = rel_sig(base, rows, 1), rel_sig(base, rows, 2)
        speed = ""
        if args.speed:
            lps = [r[6] for r in rows if np.isfinite(r[6])]
            speed = " - |"
            if lps:
                speed = f" {np.mean(lps):,.0f}"
                if len(lps) > 1:
                    speed += f" ± {np.std(lps, ddof=1):,.0f}"
                if blps and not is_base:
                    speed += f" (x{np.mean(lps) / np.mean(blps):.2f})"
                speed += " |"
        lines.append(f"| {label} | {len(rows)} | {fmt(dev)} | {fmt(test)} | {rdev} | {rtest} | {pdev} / {ptest} "
                     f"| {cost} |{speed}")
    text = "\n".join(lines) + "\n\nMean ± sample standard deviation over seeds; relative improvement over " \
        f"{base_label} = (PER(base) - PER) / PER(base), positive is better; p: paired bootstrap over " \
        "utterances (errors summed over the seeds both systems have; Bisani and Ney, 2004), two-sided, " \
        "* = p < 0.05; s/epoch in brackets: minus the baseline's." + (
            " labels/s: labelled training frames per second over all epochs (mean ± sd over seeds), "
            "in brackets the ratio to the baseline's." if args.speed else "")
    text += f" Command: `{args.command.strip()}`.\n" if args.command else "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    if args.results:
        write_into(args.results, args.block, text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
