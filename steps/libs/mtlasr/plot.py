"""Figures written as PNG files, headless (matplotlib's Agg backend) and atomically."""

from __future__ import annotations

import os

from .datadir import PathLike


def subplots(*args, **kwargs):
    """``matplotlib.pyplot.subplots`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save(fig, path: PathLike, dpi: int = 100) -> None:
    """Lay out ``fig``, write it to ``path`` through a temporary name, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
