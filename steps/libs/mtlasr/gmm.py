"""Monophone GMM-HMM training and alignment on top of kaldi-hmm-gmm.

The schedule follows Kaldi's monophone recipe: flat start from the global
mean and variance, equally spaced initial alignments, Viterbi re-estimation
with realignment on chosen iterations, Gaussians added on each of the first
``max_iter_inc`` iterations until ``totgauss``, silence likelihoods boosted
while aligning (Povey et al., 2011, the Kaldi toolkit; steps/train_mono.sh).

Models are stored with pickle (kaldi-hmm-gmm objects serialise themselves):
``{"tm": TransitionModel, "tree": ContextDependency, "am": AmDiagGmm}``.
"""

from __future__ import annotations

import gzip
import logging
import pickle
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .datadir import PathLike, atomic_open

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- model I/O
def save_model(path: PathLike, tm, tree, am) -> None:
    """Pickle a GMM-HMM (transition model, tree, acoustic model), atomically."""
    with atomic_open(path, "wb") as f:
        pickle.dump({"tm": tm, "tree": tree, "am": am}, f)


def load_model(path: PathLike):
    """Load ``(tm, tree, am)`` written by :func:`save_model`.

    Raises:
      FileNotFoundError: no such model.
    """
    with open(path, "rb") as f:
        d = pickle.load(f)
    return d["tm"], d["tree"], d["am"]


def load_transition_model(path: PathLike):
    """The transition model alone (neural models keep it beside their weights)."""
    return load_model(path)[0]


# ------------------------------------------------------------ alignments
def write_ali(path: PathLike, ali: Mapping[str, Sequence[int]]) -> None:
    """Write alignments (transition ids, 1-based) as a gzipped Kaldi binary
    ark of int32 vectors (``ali.N.gz``), sorted by utterance, atomically."""
    import kaldiio

    # No file name and a zero time stamp in the gzip header: identical
    # alignments give byte-identical files.
    with atomic_open(path, "wb") as raw:
        with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
            kaldiio.save_ark(f, {u: np.asarray(ali[u], dtype=np.int32) for u in sorted(ali)})


def read_ali(path: PathLike) -> Dict[str, np.ndarray]:
    """Read one ``ali.N.gz`` (or an uncompressed ark): utterance -> ``(T,) int32``.

    Raises:
      ValueError: a file that is not a complete ark of int vectors (e.g.
        truncated), naming it.
    """
    import kaldiio

    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return {k: np.asarray(v, dtype=np.int32) for k, v in kaldiio.load_ark(f)}
    except FileNotFoundError:
        raise
    except (EOFError, OSError, ValueError, AssertionError) as e:  # gzip / kaldiio on a damaged file
        raise ValueError(f"{path}: not a complete alignment archive ({type(e).__name__}: {e}); "
                         f"realign (steps/align_si.sh --force true)") from None


def read_ali_dir(ali_dir: PathLike) -> Dict[str, np.ndarray]:
    """All ``ali.*.gz`` files of an alignment dir.

    Raises:
      FileNotFoundError: no alignment files.
    """
    return dict(iter_ali_dir(ali_dir))


def iter_ali_dir(ali_dir: PathLike) -> Iterator[Tuple[str, np.ndarray]]:
    """``(utt, (T,) int32)`` of every ``ali.*.gz`` of an alignment dir, one
    file in memory at a time.

    Raises:
      FileNotFoundError: no alignment files.
    """
    files = sorted(Path(ali_dir).glob("ali.*.gz"))
    if not files:
        raise FileNotFoundError(f"{ali_dir}: no ali.*.gz files")
    for f in files:
        yield from read_ali(f).items()


def ali_to_pdf(tm, ali: np.ndarray) -> np.ndarray:
    """Map transition ids ``(T,)`` to pdf ids ``(T,) int64`` (0-based)."""
    table = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)
    return table[ali]


def ali_to_phones(tm, ali: np.ndarray) -> np.ndarray:
    """Map transition ids ``(T,)`` to phone ids ``(T,) int64``."""
    return np.asarray([tm.transition_id_to_phone(int(t)) for t in ali], dtype=np.int64)


# ----------------------------------------------------------- GMM routines
def init_mono(topo, feats: Iterable[np.ndarray], perturb_factor: float = 0.0):
    """Flat-start monophone model: every pdf is one Gaussian with the global
    mean and variance of ``feats`` (Kaldi's gmm-init-mono).

    Args:
      topo: ``kaldi_hmm_gmm.HmmTopology``.
      feats: iterable of ``(T, D)`` feature matrices.

    Returns:
      ``(tm, tree, am)``.

    Raises:
      ValueError: no frames.
    """
    import kaldi_hmm_gmm as khg

    n, s, ss = 0, None, None
    for m in feats:
        m = m.astype(np.float64)
        s = m.sum(0) if s is None else s + m.sum(0)
        ss = (m**2).sum(0) if ss is None else ss + (m**2).sum(0)
        n += m.shape[0]
    if n == 0:
        raise ValueError("init_mono: no feature frames")
    mean = s / n
    var = np.maximum(ss / n - mean**2, 1e-3)
    tree = khg.monophone_context_dependency(phones=topo.phones,
                                            phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes())
    gmm = khg.DiagGmm(nmix=1, dim=len(mean))
    gmm.set_weights(np.ones(1, dtype=np.float32))
    gmm.set_means(mean[None].astype(np.float32))
    gmm.set_invvars((1.0 / var)[None].astype(np.float32))
    gmm.compute_gconsts()
    am = khg.AmDiagGmm()
    for _ in range(tree.num_pdfs):
        am.add_pdf(gmm)
    if perturb_factor:
        for i in range(tree.num_pdfs):
            am.get_pdf(i).perturb(perturb_factor)
    tm = khg.TransitionModel(ctx_dep=tree, hmm_topo=topo)
    return tm, tree, am


def graph_compiler(tm, tree, lexicon_fst):
    """Kaldi's training-graph compiler for ``lexicon_fst`` (L.fst, no
    disambiguation symbols). Transition and self-loop scales are 0, as in
    compile-train-graphs: transition probabilities are added when aligning."""
    import kaldi_hmm_gmm as khg

    opts = khg.TrainingGraphCompilerOptions()
    opts.transition_scale = 0.0
    opts.self_loop_scale = 0.0
    return khg.TrainingGraphCompiler(trans_model=tm, ctx_dep=tree, lex_fst=lexicon_fst,
                                     disambig_syms=[], opts=opts)


def equal_align(graph, num_frames: int, utt: str) -> List[int]:
    """Alignment that spends equal time in each state of a random path of
    ``graph`` (Kaldi's align-equal-compiled).

    Raises:
      ValueError: the utterance is too short for its transcript.
    """
    import kaldifst

    ok, aligned = kaldifst.equal_align(ifst=graph, length=num_frames, rand_seed=3, num_retries=10)
    if not ok:
        raise ValueError(f"utterance {utt}: {num_frames} frames are too few for its transcript")
    ok, seq, _, _ = kaldifst.get_linear_symbol_sequence(aligned)
    if not ok or len(seq) != num_frames:
        raise ValueError(f"utterance {utt}: equal alignment failed")
    return list(seq)



def align(am, tm, graph, feats: np.ndarray, beam: float, retry_beam: float,
          acoustic_scale: float = 0.1, transition_scale: float = 1.0,
          self_loop_scale: float = 0.1, utt: str = "?") -> Optional[Tuple[List[int], float]]:
    """Viterbi forced alignment of one utterance (Kaldi's gmm-align-compiled).

    Args:
      graph: the utterance's training graph (not modified: a copy gets the
        transition probabilities).
      feats: ``(T, D) float32``.

    Returns:
      ``(transition ids (T,), log-likelihood)``, or None when no alignment was
      found even with ``retry_beam`` (Kaldi skips such utterances).
    """
    import kaldi_hmm_gmm as khg

    g = graph.copy()
    khg.add_transition_probs(trans_model=tm, transition_scale=transition_scale,
                             self_loop_scale=self_loop_scale, fst=g)
    dec = khg.DecodableAmDiagGmmScaled(am=am, tm=tm, feats=np.ascontiguousarray(feats, dtype=np.float32),
                                       scale=acoustic_scale)
    cfg = khg.AlignConfig()
    cfg.beam = beam
    cfg.retry_beam = retry_beam
    cfg.careful = False
    done, err, _, like, _, alignment, _ = khg.align_utterance_wrapper(
        config=cfg, utt=utt, acoustic_scale=acoustic_scale, fst=g, decodable=dec,
        num_done=0, num_error=0, num_retried=0, tot_like=0.0, frame_count=0)
    if done != 1 or len(alignment) != feats.shape[0]:
        return None
    return list(alignment), float(like)


def boost_silence(am, tm, silence_phones: Sequence[int], boost: float):
    """Copy of ``am`` with the weights of silence pdfs multiplied by ``boost``
    (not renormalised, so silence likelihoods rise; Kaldi's gmm-boost-silence)."""
    import kaldi_hmm_gmm as khg

    out = khg.AmDiagGmm()
    out.copy_from_am_diag_gmm(am)
    if boost == 1.0:
        return out
    _, pdfs = khg.get_pdfs_for_phones(tm, sorted(silence_phones))
    for pdf in pdfs:
        g = out.get_pdf(pdf)
        g.set_weights(np.asarray(g.weights, dtype=np.float32) * boost)
        g.compute_gconsts()
    return out


class Accumulator:
    """Viterbi statistics for one re-estimation pass (gmm-acc-stats-ali)."""

    def __init__(self, am, tm):
        import kaldi_hmm_gmm as khg

        self.am, self.tm = am, tm
        self.gmm = khg.AccumAmDiagGmm()
        self.gmm.init(model=am, flags=khg.GmmUpdateFlags.kGmmAll)
        self.trans = tm.init_stats()
        self.pdf_of = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)
        self.log_like = 0.0
        self.frames = 0

    def add(self, feats: np.ndarray, ali: Sequence[int]) -> None:
        """Accumulate one utterance: ``feats (T, D) float32``, ``ali (T,)`` tids."""
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        for t, tid in enumerate(ali):
            self.trans = self.tm.accumulate(1.0, int(tid), self.trans)
            self.log_like += self.gmm.accumulate_for_gmm(model=self.am, data=feats[t],
                                                         gmm_index=int(self.pdf_of[tid]), weight=1.0)
        self.frames += len(ali)


def split_by_count(am, state_occs: np.ndarray, target: int, rng: np.random.Generator,
                   perturb_factor: float = 0.01, power: float = 0.25, min_count: float = 20.0) -> int:
    """Mix up ``am`` towards ``target`` Gaussians in total, reproducibly.

    Kaldi's mixing-up (gmm-est --mix-up; AmDiagGmm::SplitByCount): the
    Gaussians are allotted to pdfs in proportion to occupancy^power (no pdf
    given more than occupancy / min_count), and a pdf that gets more
    repeatedly splits its heaviest component in two, halving its weight and
    moving the two means apart by +-``perturb_factor`` standard deviations
    along a random direction z ~ N(0, I):
    mu_new = mu + f sigma z, mu_old = mu - f sigma z.

    The binding draws that direction from ``std::random_device``, which no
    seed reaches, so every run gave another model. Here the binding does the
    allotment and the splitting with perturbation 0 (deterministic), and the
    perturbation is applied afterwards, in the binding's split order, with
    directions drawn from ``rng``: the same algorithm, but a function of the
    seed.

    Args:
      am: ``kaldi_hmm_gmm.AmDiagGmm``, modified in place (gconsts recomputed).
      state_occs: ``(num_pdfs,)`` occupancies (frames) of the pdfs.
      target: total number of Gaussians wanted.
      rng: the training run's generator (its state advances).

    Returns: the number of Gaussians after mixing up.
    """
    import kaldi_hmm_gmm as khg

    plan = khg.AmDiagGmm()
    plan.copy_from_am_diag_gmm(am)
    plan.split_by_count(state_occs=np.asarray(state_occs, dtype=np.float32), target_components=target,
                        perturb_factor=0.0, power=power, min_count=min_count)
    for pdf in range(am.num_pdfs):
        want = plan.num_gauss_in_pdf(pdf)
        gmm = am.get_pdf(pdf)
        first_new = gmm.num_gauss
        if want <= first_new:
            continue
        history = gmm.split(want, 0.0)
        means = np.array(gmm.means, dtype=np.float64)
        std = np.sqrt(np.asarray(gmm.vars, dtype=np.float64))
        for k, src in enumerate(history):
            step = perturb_factor * std[src] * rng.standard_normal(means.shape[1])
            means[first_new + k] = means[src] + step
            means[src] -= step
        gmm.set_means(means.astype(np.float32))
    am.compute_gconsts()
    return am.num_gauss


def update(am, tm, acc: Accumulator, num_gauss: int, power: float = 0.25,
           min_gaussian_occupancy: float = 3.0, perturb_factor: float = 0.01,
           min_count: float = 20.0, rng: Optional[np.random.Generator] = None) -> Tuple[float, float]:
    """ML re-estimation of transitions and GMMs, then mix-up to ``num_gauss``
    (:func:`split_by_count`; gmm-est). ``rng`` draws the mix-up perturbations
    (a training run passes one generator to every update; None: a generator
    seeded with 0).

    Returns: (average log-likelihood per frame before the update, frames).
    """
    import kaldi_hmm_gmm as khg

    tcfg = khg.MleTransitionUpdateConfig()
    tm.mle_update(acc.trans, tcfg)
    opts = khg.MleDiagGmmOptions()
    opts.min_gaussian_occupancy = min_gaussian_occupancy
    khg.mle_am_diag_gmm_update(config=opts, amdiag_gmm_acc=acc.gmm,
                               flags=khg.str_to_gmm_flags("mvw"), am_gmm=am)
    occs = np.array([acc.gmm.get_acc(i).occupancy.sum() for i in range(acc.gmm.num_accs)], dtype=np.float32)
    if num_gauss > am.num_gauss:
        split_by_count(am, occs, num_gauss, rng if rng is not None else np.random.default_rng(0),
                       perturb_factor, power, min_count)
    am.compute_gconsts()
    return acc.log_like / max(acc.frames, 1), acc.frames
