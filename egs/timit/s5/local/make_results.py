#!/usr/bin/env python3
"""Collect PER (dev, test) and training speed of systems into a Markdown table.

Usage:
  local/make_results.py <out.md> <system> [<system> ...]

  e.g.: local/make_results.py exp/results.md mono lstm

For each exp/<system> with decode_dev and decode_test scored by
local/score.sh: PER with substitutions/deletions/insertions, the LM weight
and word insertion penalty chosen on dev, and for neural systems the training frames per second and
seconds per epoch (means over epochs, from history.json).
"""

import json
import platform
import re
import sys
from datetime import date
from pathlib import Path

import os


def per_fields(decode_dir):
    line = (decode_dir / "per").read_text()
    m = re.search(r"%PER ([\d.]+) \[ (\d+) / (\d+), (\d+) ins, (\d+) del, (\d+) sub \]", line)
    if not m:
        raise ValueError(f"{decode_dir}/per: unexpected line {line!r}")
    per, err, n, ins, dele, sub = m.groups()
    return float(per), f"{sub}/{dele}/{ins} of {n}"


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 1
    out, systems = Path(args[0]), args[1:]
    rows = ["| system | dev PER % | test PER % | test S/D/I | LM weight, penalty | train frames/s | s/epoch | epochs |",
            "|---|---|---|---|---|---|---|---|"]
    for sys_name in systems:
        exp = Path("exp") / sys_name
        dev, test = exp / "decode_dev", exp / "decode_test"
        if not (dev / "per").is_file() or not (test / "per").is_file():
            continue
        dper, _ = per_fields(dev)
        tper, tsdi = per_fields(test)
        lmwt = (dev / "lmwt").read_text().strip() + ", " + (dev / "wip").read_text().strip()
        fps = spe = ep = "-"
        hist = exp / "history.json"
        if hist.is_file():
            h = json.loads(hist.read_text())
            fps = f"{sum(r['frames_per_second'] for r in h) / len(h):.0f}"
            spe = f"{sum(r['seconds'] for r in h) / len(h):.1f}"
            ep = str(len(h))
        rows.append(f"| {sys_name} | {dper:.2f} | {tper:.2f} | {tsdi} | {lmwt} | {fps} | {spe} | {ep} |")
    eer = Path("exp/ivectors_eer/eer")
    if eer.is_file():
        rows.append("")
        rows.append(f"i-vectors of the held-out speakers (exp/ivectors_eer/eer): {eer.read_text().strip()}")
    stage_times = Path("exp/log/stage_times.log")
    text = "\n".join(rows) + "\n"
    text += f"\n{date.today()} on {platform.node() or 'this host'}, {os.cpu_count()} CPUs ({platform.machine()}).\n"
    if stage_times.is_file():  # not quoted: run.sh appends to it after this table is made
        text += "\nTime of each stage that did work: exp/log/stage_times.log.\n"
    # unchanged but for the date line: left as it is (a rerun that redid nothing changes no file)
    def undated(t):
        return [line for line in t.splitlines() if not re.match(r"\d{4}-\d\d-\d\d on ", line)]

    if out.is_file() and undated(out.read_text()) == undated(text):
        return 0
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
