#!/usr/bin/env python3
"""Training speed and memory of this recipe's systems, from the last
'training done' line of each exp/<system>_s<seed>/log/train.log: seconds per
epoch and frames (10 ms) per second, mean +- std over seeds, and the highest
peak memory (max RSS, MB) over seeds, as a markdown table.

Usage: local/training_speed.py ["system system ..."]   (run in the recipe dir)
"""
import argparse
import glob
import re
import statistics as st

DONE = re.compile(r"mean ([\d.]+) s/epoch, mean (\d+) frames/s; best epoch \d+; peak memory (\d+) MB")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("systems", nargs="?", default="", help="systems in table order (default: all, sorted)")
    a = p.parse_args()
    rows = {}
    for f in sorted(glob.glob("exp/*_s[0-9]*/log/train.log")):
        system = re.search(r"exp/(.+)_s\d+/log", f).group(1)
        done = [m for m in map(DONE.search, open(f, encoding="utf-8")) if m]
        if done:
            rows.setdefault(system, []).append(tuple(float(x) for x in done[-1].groups()))
    order = a.systems.split() or sorted(rows)
    print("| system | seeds | s/epoch | frames/s | peak memory (MB) |")
    print("|---|---|---|---|---|")
    for s in (s for s in order if s in rows):
        v = rows[s]

        def cell(k):
            return f"{st.mean(x[k] for x in v):.0f}" + (f" ± {st.stdev(x[k] for x in v):.0f}" if len(v) > 1 else "")
        print(f"| {s} | {len(v)} | {cell(0)} | {cell(1)} | {max(x[2] for x in v):.0f} |")


if __name__ == "__main__":
    main()
