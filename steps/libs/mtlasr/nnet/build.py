"""Building the acoustic model of a config, its optimiser, and the
checkpoint's portable config; loading a trained model for inference.

The training loop (:mod:`mtlasr.nnet.train`) and every program that reads a
trained model (decoding, embeddings, probes) build models here, so a
checkpoint always rebuilds into the network that wrote it.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Optional, Sequence

import torch

from ..datadir import PathLike
from .config import DEFAULTS
from .model import AcousticModel
from .tasks import resolve_fork


def build_model(cfg: Dict[str, Any], input_dim: int, num_pdfs: int,
                task_dims: Optional[Dict[str, int]] = None) -> AcousticModel:
    """The acoustic model of a config, with a head for every task in ``task_dims``
    (task name -> target dimension K; None or {} = main head only).

    Raises: ValueError for a task whose fork layer does not exist.
    """
    from .encoders import build_encoder

    m = cfg["model"]
    encoder = build_encoder({**DEFAULTS["model"], **m}, input_dim)
    aux, branches = {}, {}
    for name, dim in (task_dims or {}).items():
        spec = cfg["tasks"][name]
        aux[name] = (resolve_fork(spec["fork"], len(encoder.layers), name), spec["hidden"], dim,
                     spec["pooling"], spec["tau"], spec["grl"], spec["loss"] == "aam")
        branches[name] = spec.get("branch", 0)
    # a split of the last layer narrows the main head even where the splitting
    # head itself is not built (decoding: load_for_inference)
    split = {name: spec.get("split", 0) for name, spec in cfg["tasks"].items() if spec.get("split", 0)}
    model = AcousticModel(input_dim, num_pdfs, aux=aux, encoder=encoder, branches=branches, split=split)
    model.ctc_norm = m.get("ctc_norm", DEFAULTS["model"]["ctc_norm"])
    return model


def make_optimizer(model: torch.nn.Module, cfg_train: Dict[str, Any]) -> torch.optim.Optimizer:
    """Adam or SGD with momentum, per ``train.optimizer``.

    Raises: ValueError for another name.
    """
    name = cfg_train["optimizer"]
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg_train["lr_initial"],
                                weight_decay=cfg_train["weight_decay"])
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg_train["lr_initial"],
                               momentum=cfg_train["momentum"], weight_decay=cfg_train["weight_decay"])
    raise ValueError(f"train.optimizer: unknown optimizer '{name}' (adam or sgd)")


def portable_config(cfg: Dict[str, Any], model: torch.nn.Module) -> Dict[str, Any]:
    """The config a checkpoint keeps: for a wav2vec2 encoder, its network as
    a complete ``Wav2Vec2Config`` (``model.w2v2_config``) and no
    ``model.w2v2_dir``, so that the checkpoint rebuilds (decoding, probes,
    ``train.init``) without the directory it started from; other configs
    unchanged."""
    if cfg["model"].get("encoder") != "wav2vec2":
        return cfg
    out = copy.deepcopy(cfg)
    net = model.trunk.config.to_dict()
    for k in ("transformers_version", "architectures", "_name_or_path", "model_type"):
        net.pop(k, None)
    out["model"]["w2v2_dir"] = ""
    out["model"]["w2v2_config"] = net
    return out


def load_for_inference(path: PathLike, device: torch.device = torch.device("cpu"), heads: Sequence[str] = ()):
    """Model in eval mode and its config from a checkpoint (``final.pt``).

    Auxiliary heads are dropped except those named in ``heads`` (e.g. the
    speaker head whose embeddings are scored): the model has the trunk,
    ``main`` and those.

    Raises: KeyError naming a head the checkpoint does not have.
    """
    st = torch.load(path, map_location=device, weights_only=False)
    dims = st.get("task_dims") or {}
    for h in heads:
        if h not in dims:
            raise KeyError(f"{path}: no head '{h}' (its auxiliary heads: {', '.join(dims) or 'none'})")
    model = build_model(st["config"], st["input_dim"], st["num_pdfs"], {h: dims[h] for h in heads}).to(device)
    kept = ("heads.main.",) + tuple(f"heads.{h}." for h in heads) + tuple(f"branches.{h}." for h in heads)
    keep = {k: v for k, v in st["model"].items()
            if not k.startswith(("heads.", "branches.")) or k.startswith(kept)}
    model.load_state_dict(keep)
    model.eval()
    return model, st["config"]
