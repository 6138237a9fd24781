"""Decoding pdf log-likelihood matrices through HCLG with Kaldi's lattice-faster decoder.

Both model families end in the same place: a ``(T, num_pdfs)`` matrix of
log-likelihoods per utterance, GMM log-likelihoods (Kaldi's
gmm-compute-likes) or network log-posteriors minus log-priors, the hybrid
"scaled likelihood" of Bourlard and Morgan (1994, ch. 7):
log p(x|s) = log P(s|x) - log P(s) + const. The matrix is scaled by the
acoustic scale and mapped to transition-id columns (``DecodableCtc`` reads
column i-1 for input label i), then decoded.

Language-model weight and word insertion penalty: kaldi-hmm-gmm's decoder
returns no lattice, so :class:`Decoder` applies the pair (w, p) by
decoding with acoustic scale 1/w through a graph whose word arcs cost p/w
more: cost = graph + AM / w + (p / w) * words = (AM + w * graph + p *
words) / w, with AM the acoustic cost (minus the log-likelihood). The
penalty p is per word on the acoustic scale (HTK's HVite -p); in Kaldi's
scoring pipeline that is ``lattice-scale --inv-acoustic-scale=w`` and
``lattice-add-penalty --word-ins-penalty=p/w`` (Kaldi adds its penalty to
the graph cost after the scaling). Decoding once and rescoring lattices
instead, at the same cost: :mod:`mtlasr.lattice`.
"""

from __future__ import annotations

import logging
from typing import List, Optional, Tuple

import numpy as np

logger = logging.getLogger(__name__)


def gmm_loglikes(am, feats: np.ndarray) -> np.ndarray:
    """Per-pdf GMM log-likelihoods (Kaldi's gmm-compute-likes).

    Args:
      am: ``kaldi_hmm_gmm.AmDiagGmm``.
      feats: ``(T, D) float32``.

    Returns: ``(T, num_pdfs) float32``.
    """
    from scipy.special import logsumexp

    x = np.ascontiguousarray(feats, dtype=np.float32)
    out = np.empty((x.shape[0], am.num_pdfs), dtype=np.float32)
    for p in range(am.num_pdfs):
        out[:, p] = logsumexp(np.asarray(am.get_pdf(p).log_likelihoods_matrix(x)), axis=1)
    return out


class Decoder:
    """Kaldi lattice-faster decoding of pdf log-likelihood matrices.

    Args:
      hclg: ``kaldifst.StdVectorFst`` with transition-id input labels.
      tm: the transition model the graph was built with.
      beam, max_active, lattice_beam: Kaldi decoder options.
    """

    def __init__(self, hclg, tm, beam: float = 13.0, max_active: int = 7000, lattice_beam: float = 6.0):
        import kaldi_hmm_gmm as khg

        self.tm = tm
        self.hclg = hclg  # the decoder does not own the graph: keep it alive
        self.cfg = khg.LatticeFasterDecoderConfig(max_active=max_active, beam=beam, lattice_beam=lattice_beam)
        self.decoder = khg.LatticeFasterDecoder(hclg, self.cfg)
        # Column j of the decodable matrix is transition id j + 1.
        self.tid2pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)[1:]

    def decode(self, loglikes: np.ndarray, acoustic_scale: float, utt: str = "?"
               ) -> Optional[Tuple[List[int], List[int], float]]:
        """Best path of one utterance.

        Args:
          loglikes: ``(T, num_pdfs)`` log-likelihoods.
          acoustic_scale: multiplies the log-likelihoods.

        Returns:
          ``(word ids, transition-id alignment (T,), log-likelihood)``, or None
          when no final state was reached (a partial result is never
          returned silently: the caller logs and counts it).

        Raises:
          ValueError: wrong number of pdf columns, naming the utterance.
        """
        import kaldi_hmm_gmm as khg

        if loglikes.ndim != 2 or loglikes.shape[1] != self.tm.num_pdfs:
            raise ValueError(f"utterance {utt}: log-likelihoods of shape {loglikes.shape}, "
                             f"expected (T, {self.tm.num_pdfs})")
        mat = np.ascontiguousarray(acoustic_scale * loglikes[:, self.tid2pdf], dtype=np.float32)
        dec = khg.DecodableCtc(mat)
        ok, ali, words, like = khg.decode_utterance_lattice_faster(
            decoder=self.decoder, decodable=dec, trans_model=self.tm, utt=utt, allow_partial=False)
        if not ok:
            return None
        return list(words), list(ali), float(like)


def parse_lmwts(spec: str) -> List[str]:
    """``"1:10"`` (integers) or ``"0.5 1 1.5"`` -> LM weights as strings, as
    they appear in directory names (``scoring/<lmwt>_<wip>/``).

    Raises: ValueError for a non-positive or malformed weight.
    """
    spec = spec.strip()
    if ":" in spec:
        a, b = spec.split(":")
        return [str(w) for w in range(int(a), int(b) + 1)]
    out = spec.split()
    if not out:
        raise ValueError("no LM weight given")
    for w in out:
        if float(w) <= 0:
            raise ValueError(f"LM weight {w} must be positive")
    return out


def parse_penalties(spec: str) -> List[str]:
    """``"0.0 0.5 1.0"`` -> word insertion penalties as strings (any sign).

    Raises: ValueError for an empty or malformed list.
    """
    out = spec.split()
    if not out:
        raise ValueError("no word insertion penalty given")
    for p in out:
        float(p)
    return out


def scoring_dir_name(lmwt: str, wip: str) -> str:
    """The scoring sub-directory of one (LM weight, insertion penalty) pair:
    ``<lmwt>_<wip>`` (steps/score.sh splits it at the last ``_``)."""
    return f"{lmwt}_{wip}"
