"""LSTM-HMM acoustic model with a shared LSTMP trunk and named output heads.

Seed 000 (Pironkov et al., "Multi-task learning for speech recognition
using i-vectors as auxiliary task", sec. 5.2): three unidirectional LSTM
layers of 1024 cells, each with a 256-dim linear recurrent projection (Sak
et al., 2014, the LSTMP; ``torch.nn.LSTM(proj_size=...)``), and a softmax
output over the pdfs (phone states). The trunk is kept as one LSTM module
per layer so that auxiliary heads can fork after any layer.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn


class LstmTrunk(nn.Module):
    """Stack of unidirectional LSTMP layers.

    Args:
      input_dim: feature dimension D.
      num_layers, cell_dim, proj_dim: layer count, LSTM cells, projection size
        (``proj_dim = 0`` gives plain LSTMs whose output size is ``cell_dim``).
      dropout: dropout between layers (not after the last).
    """

    def __init__(self, input_dim: int, num_layers: int = 3, cell_dim: int = 1024,
                 proj_dim: int = 256, dropout: float = 0.0):
        super().__init__()
        self.output_dim = proj_dim if proj_dim > 0 else cell_dim
        dims = [input_dim] + [self.output_dim] * num_layers
        self.layers = nn.ModuleList(
            nn.LSTM(dims[i], cell_dim, num_layers=1, batch_first=True, proj_size=proj_dim)
            for i in range(num_layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, upto: Optional[int] = None) -> List[torch.Tensor]:
        """Args: x ``(B, T, D)``; upto: stop after this many layers (default all).
        Returns each computed layer's output ``(B, T, output_dim)``."""
        outs = []
        h = x
        for i, layer in enumerate(self.layers[:upto]):
            h, _ = layer(h)
            outs.append(h)
            if i + 1 < len(self.layers):
                h = self.dropout(h)
        return outs


class Head(nn.Module):
    """Output head: optional hidden layers (Linear + ReLU), then a linear output.

    No softmax: the main task's softmax is inside the cross-entropy, and a
    regression head is linear (seed 000 sec. 5.2).

    Args:
      input_dim: size of the shared layer it reads; hidden: hidden sizes; output_dim: K.
    Shapes: ``(B, T, input_dim) -> (B, T, output_dim)``.
    """

    def __init__(self, input_dim: int, hidden: Sequence[int], output_dim: int):
        super().__init__()
        layers: List[nn.Module] = []
        d = input_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        layers.append(nn.Linear(d, output_dim))
        self.net = nn.Sequential(*layers)
        self.output_dim = output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AcousticModel(nn.Module):
    """Shared LSTMP trunk plus output heads; ``main`` gives pdf logits.

    Args:
      input_dim: feature dimension D.
      num_pdfs: number of HMM pdfs (main-task classes).
      num_layers, cell_dim, proj_dim, dropout: see :class:`LstmTrunk`.
      aux: auxiliary heads, name -> (fork layer 1..num_layers, hidden sizes,
        output dim). The main head reads the last layer.

    ``forward`` returns ``{"main": (B, T, num_pdfs) logits, <aux>: (B, T, K)}``;
    auxiliary heads are dropped at decoding, where only ``main`` is used
    (``mtlasr.nnet.train.load_for_inference`` builds the model without them).

    Raises: ValueError for a fork layer outside 1..num_layers.
    """

    def __init__(self, input_dim: int, num_pdfs: int, num_layers: int = 3, cell_dim: int = 1024,
                 proj_dim: int = 256, dropout: float = 0.0,
                 aux: Optional[Dict[str, Tuple[int, Sequence[int], int]]] = None):
        super().__init__()
        self.trunk = LstmTrunk(input_dim, num_layers, cell_dim, proj_dim, dropout)
        self.heads = nn.ModuleDict({"main": nn.Linear(self.trunk.output_dim, num_pdfs)})
        self.forks: Dict[str, int] = {"main": num_layers}
        for name, (fork, hidden, dim) in (aux or {}).items():
            if not 1 <= fork <= num_layers:
                raise ValueError(f"head {name}: fork layer {fork} is not in 1..{num_layers}")
            self.heads[name] = Head(self.trunk.output_dim, hidden, dim)
            self.forks[name] = fork

    def forward(self, x: torch.Tensor, heads: Optional[List[str]] = None) -> Dict[str, torch.Tensor]:
        """Args: x ``(B, T, D)``; heads: names to compute (default all)."""
        names = list(self.heads) if heads is None else heads
        layer_outs = self.trunk(x, upto=max(self.forks[n] for n in names))
        return {name: self.heads[name](layer_outs[self.forks[name] - 1]) for name in names}
