#!/usr/bin/env python3
"""Seed 000 Table 1 and Fig. 3 from scored systems: PER against lambda.

Usage:
  local/make_table1.py [options] <out-dir>

  e.g.: local/make_table1.py --prefix lstm_ivector --lambdas "0 1e-4 5e-4 1e-3 5e-3" \\
          --seeds "1 2 3" --results RESULTS.md exp/lstm_ivector_table1

Reads exp/<prefix>_l<lambda>_s<seed>/decode_{dev,test}/per (local/score.sh)
and history.json; writes <out-dir>/table1.md (mean and standard deviation
over seeds of dev and test PER, relative improvement over lambda = 0, the
paper's figures beside them, seconds per training epoch), <out-dir>/per.tsv
(every system) and <out-dir>/fig3.png (PER against lambda, dev and test,
with the spread over seeds). With --results FILE the table replaces the
block between ``<!-- table1:begin -->`` and ``<!-- table1:end -->`` in FILE
(appended if the markers are missing).
"""

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_mtl_table import fmt, rel_sig, write_into  # noqa: E402  (local/, beside this script)
from make_mtl_table import collect as collect_group  # noqa: E402

logger = logging.getLogger("make_table1")

# Seed 000, Table 1 (TIMIT dev / core test PER %, mean of 3 seeds).
PAPER = {"0": (20.07, 21.70), "1e-4": (19.53, 20.87), "5e-4": (19.70, 20.97),
         "1e-3": (20.10, 21.37), "5e-3": (27.87, 28.80)}


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prefix", default="lstm_ivector", help="systems are exp/<prefix>_l<lambda>_s<seed>")
    p.add_argument("--lambdas", default="0 1e-4 5e-4 1e-3 5e-3")
    p.add_argument("--seeds", default="1 2 3")
    p.add_argument("--exp", default="exp", help="experiment root (default %(default)s)")
    p.add_argument("--command", default=None, help="the command that produced the systems (for the table)")
    p.add_argument("--results", default=None, help="Markdown file to write the table into")
    p.add_argument("--figure", default=None,
                   help="also save Fig. 3 here (e.g. docs/fig3_sample.png); the --results block links it")
    p.add_argument("out_dir")
    return p


def collect(exp, prefix, lambdas, seeds):
    """{lambda: [(seed, dev PER, test PER, s/epoch), ...]} of exp/<prefix>_l<lambda>_s<seed> that are scored."""
    return {lam: collect_group(exp, f"{prefix}_l{lam}", seeds) for lam in lambdas}


def make_table(rows, lambdas, command):
    base = rows.get(lambdas[0], [])
    lines = ["| lambda | seeds | dev PER % | test PER % | rel. impr. dev % | rel. impr. test % | p dev / test "
             "| s/epoch | paper dev / test |",
             "|---|---|---|---|---|---|---|---|---|"]
    for lam in lambdas:
        r = rows[lam]
        dev, test = [x[1] for x in r], [x[2] for x in r]
        spe = [x[3] for x in r if np.isfinite(x[3])]
        paper = PAPER.get(lam)
        first = lam == lambdas[0]
        if first:
            rdev = rtest = pdev = ptest = "-"
        else:
            (rdev, pdev), (rtest, ptest) = rel_sig(base, r, 1), rel_sig(base, r, 2)
        cells = [f"{lam}{' (STL)' if first and float(lam) == 0 else ''}", str(len(r)), fmt(dev), fmt(test),
                 rdev, rtest, f"{pdev} / {ptest}", f"{np.mean(spe):.1f}" if spe else "-",
                 f"{paper[0]:.2f} / {paper[1]:.2f}" if paper else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    text += ("\nMean ± sample standard deviation over seeds; relative improvement = "
             "(PER(lambda=0) - PER(lambda)) / PER(lambda=0), positive is better; p: paired bootstrap over "
             "utterances against lambda = 0 (errors summed over seeds; Bisani and Ney, 2004), two-sided, "
             "* = p < 0.05. ")
    if command:
        text += f"Command: `{command.strip()}`.\n"
    return text


def plot(rows, lambdas, path):
    from mtlasr.plot import save, subplots

    fig, ax = subplots(figsize=(6, 3.8))
    xs = np.arange(len(lambdas))
    for k, name, marker in ((1, "dev set", "o"), (2, "test set", "s")):
        means = [np.mean([r[k] for r in rows[lam]]) if rows[lam] else np.nan for lam in lambdas]
        stds = [np.std([r[k] for r in rows[lam]], ddof=1) if len(rows[lam]) > 1 else 0 for lam in lambdas]
        ax.errorbar(xs, means, yerr=stds, marker=marker, capsize=3, label=name)
        for lam_i, lam in enumerate(lambdas):
            ax.scatter([lam_i] * len(rows[lam]), [r[k] for r in rows[lam]], s=8, alpha=0.4,
                       color="C0" if k == 1 else "C1")
    ax.set_xticks(xs)
    ax.set_xticklabels(lambdas)
    ax.set_xlabel("λ (weight of the i-vector regression task)")
    ax.set_ylabel("phone error rate (%)")
    ax.set_title("PER against λ (mean ± std over seeds; dots: single runs)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path, dpi=110)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    lambdas, seeds = args.lambdas.split(), args.seeds.split()
    rows = collect(args.exp, args.prefix, lambdas, seeds)
    if not any(rows.values()):
        logger.error("no scored system exp/%s_l*_s*", args.prefix)
        return 1
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = make_table(rows, lambdas, args.command)
    for name, text in (("table1.md", table),
                       ("per.tsv", "lambda\tseed\tdev_per\ttest_per\tseconds_per_epoch\n" + "".join(
                           f"{lam}\t{s}\t{d}\t{t}\t{e:.2f}\n" for lam in lambdas for s, d, t, e, *_ in rows[lam]))):
        tmp = out / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out / name)
    plot(rows, lambdas, out / "fig3.png")
    fig = out / "fig3.png"
    if args.figure:
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        plot(rows, lambdas, args.figure)
        fig = Path(args.figure)
    if args.results:
        link = os.path.relpath(fig, Path(args.results).resolve().parent) if fig.is_absolute() else fig
        write_into(args.results, "table1", table + f"\n![Fig. 3: PER against lambda]({link})\n")
    logger.info("wrote %s/table1.md and %s/fig3.png", out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
