"""The work of one job of the UBM and i-vector programs, as functions.

The mtlasr.bin programs of steps/ivector/ (ubm_*, ivector_*,
extract_ivectors) are thin: each parses its options, calls one function
here and writes its output; :func:`mtlasr.cli.program` runs them (logging,
one-line errors). A job reads its share of the data dir (``split<nj>/<job>``)
through a :class:`~mtlasr.features.FeatureReader` with the feature options
recorded in the model's dir, and utterances are processed in feats.scp
order; batched work (the i-vector posteriors) is cut into batches of the
same utterances whatever the program, so results do not depend on which
program computed them. An EM iteration's M-step sums the jobs'
accumulators and records the objective (:func:`estimate`).

Gaussian selection, posteriors, statistics, the E-step and extraction run
on a backend (:mod:`mtlasr.ivector.backend`: numpy, the default, or torch
on CPU or GPU), passed as ``backend``; the M-steps and UBM training are
numpy's.

Defaults that no step exposes are the constants below.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, TypeVar

import numpy as np

from ..datadir import PathLike
from ..features import FeatureReader, read_kaldi_conf
from .backend import NumpyBackend
from .extractor import IvectorExtractor
from .extractor_acc import IvectorExtractorAcc
from .gmm import DiagGmm, FullGmm
from .posteriors import SelectionFile
from .tables import record_objf
from .ubm import make_acc

BATCH_SIZE = 64  # utterances per batched i-vector posterior

T = TypeVar("T")
Selection = Tuple[np.ndarray, Optional[np.ndarray]]


class PosteriorOpts(NamedTuple):
    """How frame posteriors of the UBM are computed
    (:func:`~mtlasr.ivector.posteriors.posteriors`)."""

    num_gselect: int
    min_post: float
    posterior_scale: float

    @classmethod
    def read(cls, extractor_dir: PathLike) -> "PosteriorOpts":
        """The options of ``<extractor_dir>/posterior.conf`` (written by
        steps/ivector/train_ivector_extractor.sh: ``--num-gselect``,
        ``--min-post``, ``--posterior-scale``).

        Raises:
          FileNotFoundError: no posterior.conf.
          KeyError: an option missing from it.
        """
        conf = read_kaldi_conf(Path(extractor_dir) / "posterior.conf")
        return cls(int(conf["num-gselect"]), float(conf["min-post"]), float(conf["posterior-scale"]))


def batches(items: Iterable[T], size: int) -> Iterator[List[T]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    batch: List[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def sum_accs(paths: Sequence[PathLike], load: Callable[[PathLike], T]) -> T:
    """The sum of the accumulators of split jobs (each with ``add``), in the
    order of ``paths``."""
    acc = load(paths[0])
    for path in paths[1:]:
        acc.add(load(path))
    return acc


def save_acc(acc, path: PathLike, feats: FeatureReader, logger: logging.Logger) -> None:
    """Write a job's accumulator and log the job's summary: throughput,
    utterances skipped, log-likelihood per frame (the steps quote job 1's)."""
    acc.save(path)
    logger.info("%s; log-likelihood per frame %.4f", feats, acc.objf_per_frame)


def add_estimation_args(parser: argparse.ArgumentParser, model: str) -> None:
    """The options and arguments every M-step program takes: --iteration,
    --objf-file, <model>_in, <model>_out and the accumulators."""
    parser.add_argument("--iteration", type=int, required=True, help="iteration number, for the log and --objf-file")
    parser.add_argument("--objf-file", default=None, help="summary file of 'iteration objf' lines to update")
    parser.add_argument(f"{model}_in")
    parser.add_argument(f"{model}_out")
    parser.add_argument("accs", nargs="+")


def estimate(model, acc_paths: Sequence[PathLike], load_acc: Callable, update: Callable, iteration: int,
             objf_file: Optional[PathLike]):
    """One EM M-step from the accumulators of split jobs.

    Args:
      model: the model that went into the iteration.
      acc_paths, load_acc: the jobs' accumulators and their reader (the
        accumulator class's ``check`` must accept ``model``).
      update: ``update(acc)``, the new model from the summed statistics.
      iteration, objf_file: for :func:`~mtlasr.ivector.tables.record_objf`.

    Returns:
      ``(new model, summed accumulator, the iteration's log line)``, the
      objective (the log-likelihood per frame of the data under ``model``)
      recorded.

    Raises:
      ValueError: accumulators of another size than the model, or no
        statistics.
    """
    acc = sum_accs(acc_paths, load_acc)
    acc.check(model)
    new = update(acc)
    return new, acc, record_objf(objf_file, iteration, acc.objf_per_frame)


# ------------------------------------------------------------------- UBMs
def select_gaussians(dubm: DiagGmm, feats: FeatureReader, num_gselect: int, fgmm: Optional[FullGmm] = None,
                     min_post: Optional[float] = None, posterior_scale: Optional[float] = None,
                     backend=None) -> Dict[str, Selection]:
    """Per utterance, the ``num_gselect`` best Gaussians of each frame under
    ``dubm`` (Kaldi's gmm-gselect) and, with ``fgmm``, their posteriors
    under it (:func:`~mtlasr.ivector.posteriors.posteriors`, which then
    needs ``min_post`` and ``posterior_scale``), computed by ``backend``
    (default numpy).

    Returns:
      utterance -> ``(idx (T, K), post (T, K) or None)`` numpy arrays, for
      :func:`~mtlasr.ivector.posteriors.save_selection`.
    """
    backend = backend or NumpyBackend()
    ubm = backend.ubm(dubm, fgmm)
    sel: Dict[str, Selection] = {}
    for utt, x in feats:
        if fgmm is None:
            sel[utt] = (backend.numpy(ubm.gselect(x, num_gselect)), None)
        else:
            idx, post = ubm.posteriors(x, num_gselect, min_post, posterior_scale)
            sel[utt] = (backend.numpy(idx), backend.numpy(post))
    return sel


def accumulate_gmm(gmm, feats: FeatureReader, gselect: Optional[SelectionFile] = None):
    """EM statistics of a diagonal or full GMM on a job's features
    (:meth:`~mtlasr.ivector.ubm.DiagGmmAcc.accumulate`), restricted to the
    Gaussians of ``gselect`` when given.

    Raises:
      KeyError, ValueError: an utterance without a selection, or with one
        of another length (naming the file).
    """
    acc = make_acc(gmm)
    for utt, x in feats:
        g = None if gselect is None else gselect.lookup(utt, x.shape[0])[0]
        acc.accumulate(gmm, x, g)
    return acc


# ----------------------------------------------------- i-vector extractor
class UttStats(NamedTuple):
    """One utterance's frames, UBM posteriors and Baum-Welch statistics,
    as the backend's arrays (numpy arrays, or tensors on its device)."""

    utt: str
    x: np.ndarray                # (T, F)
    idx: np.ndarray              # (T, K)
    post: np.ndarray             # (T, K)
    gamma: np.ndarray            # (C,)
    f: np.ndarray                # (C, F)
    S: Optional[np.ndarray]      # (C, F, F) or None


def iter_stats(feats: FeatureReader, post_of: Callable[[str, np.ndarray], Selection], num_gauss: int,
               second_order: bool, backend) -> Iterator[UttStats]:
    """Baum-Welch statistics (``backend.stats``,
    :func:`~mtlasr.ivector.posteriors.utterance_stats`) of each utterance of
    a job, its posteriors given by ``post_of(utt, x)``."""
    for utt, x in feats:
        idx, post = post_of(utt, x)
        x, idx, post = backend.array(x), backend.indices(idx), backend.array(post)
        gamma, f, s = backend.stats(x, idx, post, num_gauss, second_order)
        yield UttStats(utt, x, idx, post, gamma, f, s)


def accumulate_extractor(ie: IvectorExtractor, feats: FeatureReader, posts: SelectionFile,
                         batch_size: int = BATCH_SIZE, backend=None) -> IvectorExtractorAcc:
    """The extractor's EM statistics on a job's features with the UBM
    posteriors of ``posts`` (Kaldi's ivector-extractor-acc-stats), in
    batches of ``batch_size`` utterances, computed by ``backend`` (default
    numpy).

    Raises:
      KeyError, ValueError: an utterance without posteriors, or with
        posteriors of another length (naming the file); no utterance with
        frames.
    """
    backend = backend or NumpyBackend()
    bie = backend.extractor(ie)
    acc = backend.extractor_acc(ie)
    stats = iter_stats(feats, lambda utt, x: posts.lookup(utt, x.shape[0]), ie.num_gauss, True, backend)
    for batch in batches(stats, batch_size):
        acc.accumulate(bie, backend.stack([b.gamma for b in batch]), backend.stack([b.f for b in batch]),
                       sum(b.S for b in batch), sum(b.x.shape[0] for b in batch))
    if acc.count == 0:
        raise ValueError(f"{feats.data_dir}: no utterance with frames")
    return backend.acc_result(acc)


def extract(ie: IvectorExtractor, fgmm: FullGmm, dubm: DiagGmm, feats: FeatureReader, opts: PosteriorOpts,
            period: Optional[int] = None, batch_size: int = BATCH_SIZE,
            backend=None) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """I-vectors of a job's utterances (Kaldi's ivector-extract), the UBM
    posteriors computed as in training (``opts``), the posteriors of w in
    batches of ``batch_size`` utterances, computed by ``backend`` (default
    numpy).

    Args:
      period: also the online i-vectors, one every ``period`` frames
        (:meth:`IvectorExtractor.online_ivectors`); None: not.

    Returns:
      ``(utt -> (D,) i-vector, utt -> (ceil(T / period), D) online
      i-vectors)``, the second empty without ``period``.
    """
    backend = backend or NumpyBackend()
    bie, ubm = backend.extractor(ie), backend.ubm(dubm, fgmm)
    utt_ivectors: Dict[str, np.ndarray] = {}
    online: Dict[str, np.ndarray] = {}
    stats = iter_stats(feats, lambda utt, x: ubm.posteriors(x, *opts), ie.num_gauss, False, backend)
    for batch in batches(stats, batch_size):
        if period is not None:
            for b in batch:
                online[b.utt] = backend.numpy(bie.online_ivectors(b.x, b.idx, b.post, period))
        vecs = backend.numpy(bie.extract(backend.stack([b.gamma for b in batch]), backend.stack([b.f for b in batch])))
        utt_ivectors.update(zip((b.utt for b in batch), vecs))
    return utt_ivectors, online
