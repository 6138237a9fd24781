"""LSTM-HMM acoustic model with a shared LSTMP trunk and named output heads.

Seed 000 (Pironkov et al., "Multi-task learning for speech recognition
using i-vectors as auxiliary task", sec. 5.2): three unidirectional LSTM
layers of 1024 cells, each with a 256-dim linear recurrent projection (Sak
et al., 2014, the LSTMP; ``torch.nn.LSTM(proj_size=...)``), and a softmax
output over the pdfs (phone states). The trunk is kept as one LSTM module
per layer so that auxiliary heads can fork after any layer.
"""

from __future__ import annotations

from typing import Dict, List, Optional

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

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Args: x ``(B, T, D)``. Returns each layer's output ``(B, T, output_dim)``."""
        outs = []
        h = x
        for i, layer in enumerate(self.layers):
            h, _ = layer(h)
            outs.append(h)
            if i + 1 < len(self.layers):
                h = self.dropout(h)
        return outs


class AcousticModel(nn.Module):
    """Shared LSTMP trunk plus output heads; ``main`` gives pdf logits.

    Args:
      input_dim: feature dimension D.
      num_pdfs: number of HMM pdfs (main-task classes).
      num_layers, cell_dim, proj_dim, dropout: see :class:`LstmTrunk`.

    ``forward`` returns ``{"main": (B, T, num_pdfs) logits}``; auxiliary heads
    (later tasks) add entries keyed by their names and are dropped at
    decoding, where only ``main`` is used.
    """

    def __init__(self, input_dim: int, num_pdfs: int, num_layers: int = 3, cell_dim: int = 1024,
                 proj_dim: int = 256, dropout: float = 0.0):
        super().__init__()
        self.trunk = LstmTrunk(input_dim, num_layers, cell_dim, proj_dim, dropout)
        self.heads = nn.ModuleDict({"main": nn.Linear(self.trunk.output_dim, num_pdfs)})

    def forward(self, x: torch.Tensor, heads: Optional[List[str]] = None) -> Dict[str, torch.Tensor]:
        layer_outs = self.trunk(x)
        names = list(self.heads) if heads is None else heads
        return {name: self.heads[name](layer_outs[-1]) for name in names}
