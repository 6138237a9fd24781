"""YAML configuration for neural training, with command-line overrides.

A config is a nested mapping (sections ``model``, ``chunk``, ``train``,
``features``). Overrides use dotted keys, ``train.max_epochs=2``; values are
parsed as YAML scalars. Unknown keys are errors, so a typo cannot silently
fall back to a default.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, Iterable

import yaml

from ..datadir import PathLike, atomic_open

DEFAULTS: Dict[str, Dict[str, Any]] = {
    "model": {"num_layers": 3, "cell_dim": 1024, "proj_dim": 256, "dropout": 0.0},
    "chunk": {"chunk": 20, "left": 40, "delay": 5},
    "features": {"norm_vars": True, "delta_order": 0},
    "train": {
        "minibatch": 100,          # chunks per minibatch
        "max_epochs": 10,
        "lr_initial": 0.0012,
        "lr_final": 0.00012,       # reached at the last epoch (exponential decay per epoch)
        "optimizer": "adam",       # adam | sgd
        "momentum": 0.9,           # sgd only
        "weight_decay": 0.0,
        "grad_clip": 5.0,          # max gradient norm (0 = off)
        "seed": 0,
        "num_threads": 2,          # torch CPU threads
        "early_stop_patience": 0,  # stop after this many epochs without a better valid loss (0 = never)
        "log_interval": 10,        # minibatches between progress lines
    },
}


def _merge(base: Dict[str, Any], new: Dict[str, Any], where: str) -> None:
    for k, v in new.items():
        if k not in base:
            raise KeyError(f"{where}: unknown key '{k}' (known: {', '.join(sorted(base))})")
        if isinstance(base[k], dict):
            if not isinstance(v, dict):
                raise TypeError(f"{where}: '{k}' must be a mapping")
            _merge(base[k], v, f"{where}.{k}")
        else:
            base[k] = v


def load_config(path: PathLike = None, overrides: Iterable[str] = ()) -> Dict[str, Any]:
    """Defaults, updated by the YAML file at ``path``, then by ``key.sub=value`` overrides.

    Raises:
      KeyError: an unknown key (naming it and the file).
      ValueError: a malformed override.
    """
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        data = yaml.safe_load(Path(path).read_text()) or {}
        _merge(cfg, data, str(path))
    for ov in overrides:
        if "=" not in ov:
            raise ValueError(f"override '{ov}' is not key.sub=value")
        key, value = ov.split("=", 1)
        node: Any = {}
        parts = key.split(".")
        cur = node
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = yaml.safe_load(value)
        _merge(cfg, node, f"override {ov}")
    return cfg


def save_config(cfg: Dict[str, Any], path: PathLike) -> None:
    """Write the resolved config (what was actually used) as YAML, atomically."""
    with atomic_open(path) as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
