#!/usr/bin/env python3
"""Seed 003's static weight from the single-task losses (eq. 5).

    lambda = L_k / (L_s + L_k)

with L_s the average training loss of the single-task speech model (CTC)
and L_k that of the single-task speaker model (AAM-softmax); the speech
loss then gets weight lambda and the speaker loss 1 - lambda (eq. 4), which
makes the two weighted losses about equal in size. The paper's averages,
0.43 (CTC per letter) and 3.14, give lambda = 0.88 (sec. 5.1). Here the
averages are the last epoch's mean training loss of each model
(``history.json`` of ``mtlasr.bin.train_nnet``: ``train_loss`` of the speech
model, ``train_<task>_loss`` of the speaker model): the loss a trained
model reaches, not the mean over a run whose first epochs (all-blank CTC)
are far higher.

Prints lambda with 4 decimals on stdout and the two averages on stderr.

Raises (exit 1 with the message): a missing or unreadable history.json, or
one without the loss it needs.
"""

import argparse
import json
import sys
from pathlib import Path


def last_loss(exp_dir: Path, key: str) -> float:
    """The last epoch's value of ``key`` in ``exp_dir/history.json``.

    Raises: SystemExit naming the file and the key.
    """
    path = exp_dir / "history.json"
    try:
        hist = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: cannot read the training history ({e}); train this system first")
    if not isinstance(hist, list) or not hist or key not in hist[-1]:
        raise SystemExit(f"{path}: no '{key}' in its last epoch (is it the right system?)")
    value = float(hist[-1][key])
    if not value > 0:
        raise SystemExit(f"{path}: '{key}' is {value}: eq. 5 needs a positive average loss")
    return value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="spk", help="the speaker task's name in the config (default spk)")
    p.add_argument("speech_dir", type=Path, help="the single-task speech model, e.g. exp/stl_speech_s0")
    p.add_argument("speaker_dir", type=Path, help="the single-task speaker model, e.g. exp/stl_speaker_s0")
    a = p.parse_args()
    l_s = last_loss(a.speech_dir, "train_loss")
    l_k = last_loss(a.speaker_dir, f"train_{a.task}_loss")
    lam = l_k / (l_s + l_k)
    print(f"eq. 5: L_s = {l_s:.4f} ({a.speech_dir}), L_k = {l_k:.4f} ({a.speaker_dir}): "
          f"lambda = {lam:.4f}", file=sys.stderr)
    print(f"{lam:.4f}")


if __name__ == "__main__":
    main()
