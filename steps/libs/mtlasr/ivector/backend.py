"""Where the numeric work of an i-vector job runs: numpy on CPU (the
reference, and the default) or PyTorch on CPU or a GPU
(:mod:`mtlasr.ivector.torch_backend`, which says what is bit-equal).

A backend is chosen by name from :data:`BACKENDS` (``--backend`` of the
programs, :func:`add_backend_args`, :func:`backend_from_args`) and gives
the jobs of :mod:`mtlasr.ivector.jobs` one interface:

* ``array(a)``, ``indices(a)``, ``numpy(a)``, ``stack(arrays)``: the
  backend's arrays (float64, int64 indices) from and to numpy;
* ``ubm(dubm, fgmm)``: an object with ``gselect(x, k)`` and
  ``posteriors(x, k, min_post, posterior_scale)``;
* ``stats(x, idx, post, num_gauss, second_order)``: Baum-Welch statistics;
* ``extractor(ie)``: an object with ``extract(gamma, f)`` and
  ``online_ivectors(x, idx, post, period)``;
* ``extractor_acc(ie)``, ``acc_result(acc)``: E-step statistics that
  ``accumulate(extractor(ie), gamma, f, S_sum, frames)``, and the numpy
  :class:`IvectorExtractorAcc` they come to.
"""

from __future__ import annotations

import argparse
from typing import Optional

import numpy as np

from ..threads import capped_threads
from .extractor import IvectorExtractor
from .extractor_acc import IvectorExtractorAcc
from .gmm import DiagGmm, FullGmm
from .posteriors import posteriors, utterance_stats

DEFAULT_BACKEND = "numpy"
DEFAULT_DEVICE = "auto"


class _NumpyUbm:
    """:meth:`DiagGmm.gselect` and :func:`posteriors` behind the backend
    interface."""

    def __init__(self, dubm: DiagGmm, fgmm: Optional[FullGmm]):
        self.dubm, self.fgmm = dubm, fgmm

    def gselect(self, x: np.ndarray, num_gselect: int) -> np.ndarray:
        return self.dubm.gselect(x, num_gselect)

    def posteriors(self, x: np.ndarray, num_gselect: int, min_post: float, posterior_scale: float):
        return posteriors(self.fgmm, self.dubm, x, num_gselect, min_post, posterior_scale)


class NumpyBackend:
    """The numpy path (:mod:`mtlasr.ivector.posteriors`, :class:`IvectorExtractor`,
    :class:`IvectorExtractorAcc`); BLAS threads come from the environment
    (``OMP_NUM_THREADS`` etc., which the steps set from ``--num-threads``).

    Raises (constructor):
      ValueError: a device other than ``cpu`` or ``auto``.
    """

    name = "numpy"

    def __init__(self, device: str = DEFAULT_DEVICE):
        if device not in ("cpu", "auto"):
            raise ValueError(f"--device {device} needs --backend torch (numpy runs on the CPU)")
        self.device = "cpu"

    def __str__(self) -> str:
        return "numpy on cpu"

    array = staticmethod(lambda a: np.asarray(a, dtype=np.float64))
    indices = staticmethod(np.asarray)
    numpy = staticmethod(np.asarray)
    stack = staticmethod(np.stack)

    def ubm(self, dubm: DiagGmm, fgmm: Optional[FullGmm] = None) -> _NumpyUbm:
        return _NumpyUbm(dubm, fgmm)

    def stats(self, x, idx, post, num_gauss: int, second_order: bool):
        return utterance_stats(x, idx, post, num_gauss, second_order=second_order)

    def extractor(self, ie: IvectorExtractor) -> IvectorExtractor:
        return ie

    def extractor_acc(self, ie: IvectorExtractor) -> IvectorExtractorAcc:
        return IvectorExtractorAcc.for_extractor(ie)

    def acc_result(self, acc: IvectorExtractorAcc) -> IvectorExtractorAcc:
        return acc


class TorchBackend:
    """The torch path (:mod:`mtlasr.ivector.torch_backend`) on ``device``
    (``auto``: the GPU if torch sees one). Models are copied to the device
    once per job (cached by identity).

    Args:
      device: auto, cpu, cuda or cuda:N.
      method: of the statistics (``exact`` or ``dense``); default the
        device's (:func:`~mtlasr.ivector.torch_backend.default_method`).

    Raises (constructor):
      ValueError: an unknown device, or a GPU where torch sees none.
    """

    name = "torch"

    def __init__(self, device: str = DEFAULT_DEVICE, method: Optional[str] = None):
        from . import torch_backend as tb

        self.tb = tb
        self.device = tb.resolve_device(device)
        self.method = method or tb.default_method(self.device)
        self._models = {}

    def __str__(self) -> str:
        return f"torch on {self.device} ({self.method} statistics)"

    def array(self, a):
        return self.tb.as_tensor(a, self.device)

    def indices(self, a):
        return self.tb.as_tensor(a, self.device, dtype=self.tb.torch.int64)

    def numpy(self, a) -> np.ndarray:
        return self.tb.to_numpy(a)

    def stack(self, arrays):
        return self.tb.torch.stack(list(arrays))

    def _cached(self, models: tuple, make):
        """``make()`` once per tuple of model objects (held here, so that
        their ids are not reused)."""
        key = tuple(id(m) for m in models)
        if key not in self._models:
            self._models[key] = (models, make())
        return self._models[key][1]

    def ubm(self, dubm: DiagGmm, fgmm: Optional[FullGmm] = None):
        return self._cached((dubm, fgmm), lambda: self.tb.TorchUbm(dubm, fgmm, self.device))

    def stats(self, x, idx, post, num_gauss: int, second_order: bool):
        return self.tb.utterance_stats(self.array(x), self.indices(idx), self.array(post), num_gauss,
                                       second_order, self.method)

    def extractor(self, ie: IvectorExtractor):
        return self._cached((ie,), lambda: self.tb.TorchExtractor(ie, self.device, self.method))

    def extractor_acc(self, ie: IvectorExtractor):
        return self.tb.TorchExtractorAcc(self.extractor(ie))

    def acc_result(self, acc) -> IvectorExtractorAcc:
        return acc.to_numpy()


BACKENDS = {"numpy": NumpyBackend, "torch": TorchBackend}


def make_backend(name: str = DEFAULT_BACKEND, device: str = DEFAULT_DEVICE, num_threads: int = 1):
    """The backend ``name`` on ``device``, with ``num_threads`` CPU threads
    for torch (lowered, with a warning, to the cores the job was given:
    :func:`mtlasr.threads.capped_threads`; numpy's BLAS threads are the
    environment's, and only checked).

    Raises:
      ValueError: an unknown backend or device, a GPU where there is none,
        ``num_threads`` < 1.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend '{name}' (one of {', '.join(BACKENDS)})")
    threads = capped_threads(num_threads)
    if name == "torch":
        import torch

        torch.set_num_threads(threads)
        return TorchBackend(device)
    return NumpyBackend(device)


def add_backend_args(parser: argparse.ArgumentParser) -> None:
    """``--backend``, ``--device`` and ``--num-threads``, the options of
    :func:`make_backend` (defaults here, once)."""
    parser.add_argument("--backend", default=DEFAULT_BACKEND, choices=sorted(BACKENDS),
                        help="numpy (the reference) or torch (default %(default)s)")
    parser.add_argument("--device", default=DEFAULT_DEVICE,
                        help="torch device: auto (a GPU if there is one), cpu, cuda or cuda:N (default %(default)s)")
    parser.add_argument("--num-threads", type=int, default=1,
                        help="CPU threads (torch's; numpy's BLAS threads are set by the environment); at most "
                             "the cores the job was given (default %(default)s)")


def backend_from_args(args: argparse.Namespace):
    """:func:`make_backend` from :func:`add_backend_args`'s options."""
    return make_backend(args.backend, args.device, args.num_threads)
