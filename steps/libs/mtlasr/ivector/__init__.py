"""GMM-UBM and i-vector extractor, in Kaldi's formulation, batched in numpy.

Modules, and where each formula comes from:

* :mod:`.linalg`: packed symmetric matrices, log-determinants, inverses and
  the covariance floor (Kaldi's SpMatrix::ApplyFloor).
* :mod:`.gmm`: :class:`DiagGmm`, :class:`FullGmm`: Gaussian mixtures whose
  per-component log-likelihoods are computed for a whole block of frames
  with matrix products (the quadratic form of a full covariance through
  packed outer products of the frames, as Kaldi's FullGmm::LogLikelihoods
  does); Gaussian selection and splitting.
* :mod:`.ubm`: UBM training as in Kaldi's sid/train_diag_ubm.sh and
  sid/train_full_ubm.sh: EM statistics and M-steps (:class:`DiagGmmAcc`,
  :class:`FullGmmAcc`; Dempster, Laird and Rubin 1977) and the
  initialisation from random frames with Gaussian splitting
  (:func:`init_diag_ubm`, gmm-global-init-from-feats).
* :mod:`.posteriors`: frame posteriors (:func:`posteriors`, Kaldi's
  fgmm-global-gselect-to-post + scale-post), Baum-Welch statistics
  (:func:`utterance_stats`) and the per-job selection/posterior files.
* :mod:`.extractor`: :class:`IvectorExtractor`, the total-variability model
  of Dehak et al. (2011), "Front-end factor analysis for speaker
  verification", IEEE TASLP 19(4), with the E-step of Kenny, Boulianne and
  Dumouchel (2005), "Eigenvoice modeling with sparse training data", in
  Kaldi's variant (ivector/ivector-extractor.cc without weight projections,
  i.e. ``use_weights=false``): the mean supervector is absorbed into the
  projection M through a prior offset (the prior of w is
  N([prior_offset, 0, ..., 0], I)) and first-order statistics are
  uncentered.
* :mod:`.extractor_acc`: :class:`IvectorExtractorAcc`, its EM statistics
  and M-step; after each M-step the prior is re-estimated and the model
  re-parametrised so that the prior is standard again (Kaldi's
  UpdatePrior; Kenny, Ouellet, Dehak, Gupta and Dumouchel 2008, "A study of
  inter-speaker variability in speaker verification").
* :mod:`.backend`: where a job's numeric work runs (``--backend numpy``,
  the default, or ``torch``), behind one interface.
* :mod:`.torch_backend`: posteriors, statistics, the E-step and extraction
  in PyTorch on CPU or GPU; which results are bit for bit numpy's (the
  statistics) and which agree to ~1e-15 (what passes through BLAS or LAPACK).
* :mod:`.torch_stats`: its Baum-Welch statistics, with numpy's and scipy's
  summation orders reproduced.
* :mod:`.npz`: model and accumulator files (.npz tagged with their kind).
* :mod:`.tables`: ark/scp output and the per-iteration objective files.
* :mod:`.jobs`: the work of one job of the mtlasr.bin programs.

Features come from :mod:`mtlasr.features` (:func:`~mtlasr.features.iter_features`,
:class:`~mtlasr.features.FeatureReader`); speaker averages of i-vectors from
:func:`mtlasr.speaker.speaker_means`.

Notation: T frames, F feature dimension, C Gaussians, K selected Gaussians
per frame, D i-vector dimension, N utterances. Everything is float64;
log-likelihoods are natural logs (nats).
"""

from .extractor import IvectorExtractor
from .extractor_acc import IvectorExtractorAcc
from .gmm import DiagGmm, FullGmm, load_gmm
from .linalg import CHUNK, LOG_2PI, floor_covariances, packed_outer, unpack_symmetric
from .posteriors import SelectionFile, load_selection, posteriors, save_selection, utterance_stats
from .tables import objf_line, record_objf, write_ark_scp, write_objf
from .ubm import DiagGmmAcc, FullGmmAcc, init_diag_ubm, load_acc, make_acc

__all__ = [
    "CHUNK", "LOG_2PI", "DiagGmm", "DiagGmmAcc", "FullGmm", "FullGmmAcc", "IvectorExtractor",
    "IvectorExtractorAcc", "SelectionFile", "floor_covariances", "init_diag_ubm", "load_acc", "load_gmm",
    "load_selection", "make_acc", "objf_line", "packed_outer", "posteriors", "record_objf", "save_selection",
    "unpack_symmetric", "utterance_stats", "write_ark_scp", "write_objf",
]
