"""Decoding once into a lattice, then the LM-weight sweep as lattice rescoring.

Kaldi decodes each utterance once, at acoustic scale 0.1, and keeps the
lattice; scoring then finds, for every LM weight w and word insertion
penalty, the best path of the rescaled lattice (steps/score_kaldi.sh:
``lattice-scale --inv-acoustic-scale=w | lattice-add-penalty |
lattice-best-path``). This module does the same with the Python bindings at
hand: kaldi-hmm-gmm 1.1.4 exposes no lattice, so the one pass runs Kaldi's
lattice-simple decoder from kaldi-decoder 0.2.11 (``LatticeSimpleDecoder``,
which accepts kaldifst 1.7.17 FSTs; newer kaldi-decoder releases do not),
whose raw state-level lattice (``kaldifst.Lattice``: input labels
transition ids, output labels word ids, ``LatticeWeight(graph cost,
acoustic cost)``) is rescored with kaldifst's ``scale_lattice``,
``shortest_path`` and ``get_linear_symbol_sequence``.

Costs, all in nats (negative natural-log units). For a path through HCLG
with graph cost G (HCLG arc weights: LM, lexicon and transition costs),
acoustic cost A = -sum_t loglike[t, pdf(tid_t)] (unscaled) and N words, the
sweep's cost at LM weight w and insertion penalty p is the one
:class:`mtlasr.decode.Decoder` decodes with (acoustic scale 1/w, graph
word arcs p/w dearer)::

    cost_{w,p} = G + A / w + (p / w) N = (w G + A + p N) / w

i.e. p is a cost per word on the acoustic log-likelihood scale (HTK's
HVite -p, and the ``insertion_score`` of mtlasr.ctc_decode with the opposite
sign). In Kaldi's tools that is ``lattice-scale --inv-acoustic-scale=w``,
``lattice-add-penalty --word-ins-penalty=p/w``, ``lattice-best-path``:
Kaldi's own penalty is added to the graph cost after the scaling, so its
``--word-ins-penalty q`` is p = q w here.

The lattice is decoded at one LM weight w0 (acoustic scale 1/w0), so its
arcs carry (G arc cost, A_arc / w0). With the penalty added to the
acoustic side of word arcs, A_arc / w0 + p / w0, once per penalty, the
cost above is ``graph + (w0 / w) * acoustic``: a 2x2 diagonal scaling
[[1, 0], [0, w0 / w]] of every weight (Kaldi's ScaleLattice), then the
shortest path.

Rescoring equals re-decoding at every (w, p) only when the lattice holds
the best path of every (w, p) of the sweep. The decoder keeps the paths
within ``lattice_beam`` of the best one *at w0*; a path that is best at a
far weight can cost more than that at w0 and be pruned. The search beam
may lose it earlier: the lattice-simple decoder prunes at the beam alone,
while the re-decoding path's lattice-faster decoder also keeps at least
min-active = 200 tokens (kaldi-hmm-gmm's default), which on a graph of
fewer states (a phone bigram HCLG of 145 states) is an exhaustive search.
So a lattice at a small LM weight (a large acoustic scale) of a GMM, whose
log-likelihoods differ by hundreds per frame, loses best paths at beam 13
(measured on the TIMIT sample's monophone GMM, dev, lattice beam 6: with
the lattice at LM weight 1, none of the 16 hypotheses equals re-decoding's
at any weight of the default sweep; with it at 4, all 16 are equal from
LM weight 1.5 to 8; egs/timit/s5/RESULTS.md). On a word graph too (the
TIMIT sample's words, bigram, monophone GMM), the lattice-simple search at
beam 13 ended 1.3-3.5 nats above the lattice-faster one's best path on 3
of 10 utterances at the lattice's own LM weight 6: a wider --beam for the
lattice pass buys back its search errors. Then rescoring returns the best path among those kept, as Kaldi's
scoring does. With beams wide enough, the two are equal
(tests/test_decode_rescore.py).
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

# (word ids, transition-id alignment (T,), graph cost, acoustic cost) of one path;
# the costs are those of the rescored lattice (see best_path).
Path = Tuple[List[int], List[int], float, float]


def _kaldi_decoder():
    """kaldi_decoder, imported after kaldifst (its lattices are kaldifst
    types, which pybind11 can only return once kaldifst registered them).

    Raises: ImportError naming the pinned version when it is missing.
    """
    import kaldifst  # noqa: F401  (registers the Lattice type first)

    try:
        import kaldi_decoder
    except ImportError as e:
        raise ImportError("decoding with lattices needs kaldi-decoder==0.2.11 "
                          "(pip install -r requirements.txt)") from e
    return kaldi_decoder


class LatticeDecoder:
    """Kaldi's lattice-simple decoder over HCLG, at one acoustic scale.

    Args:
      hclg: ``kaldifst.StdVectorFst`` with transition-id input labels.
      tm: the transition model the graph was built with.
      lattice_lmwt: the LM weight w0 of the pass: log-likelihoods are scaled
        by 1 / w0 (Kaldi's --acoustic-scale), and both beams are in units of
        ``graph cost + acoustic cost / w0``.
      beam: search beam (Kaldi's --beam).
      lattice_beam: paths kept in the lattice (Kaldi's --lattice-beam).

    Raises: ValueError for a non-positive weight or beam.
    """

    def __init__(self, hclg, tm, lattice_lmwt: float, beam: float = 13.0, lattice_beam: float = 6.0):
        kd = _kaldi_decoder()
        if not lattice_lmwt > 0:
            raise ValueError(f"the lattice LM weight must be positive, got {lattice_lmwt}")
        if not (beam > 0 and lattice_beam > 0):
            raise ValueError(f"beams must be positive, got beam {beam}, lattice beam {lattice_beam}")
        self.tm = tm
        self.hclg = hclg  # the decoder does not own the graph: keep it alive
        self.lattice_lmwt = float(lattice_lmwt)
        self.decoder = kd.LatticeSimpleDecoder(hclg, kd.LatticeSimpleDecoderConfig(beam=beam, lattice_beam=lattice_beam))
        self._decodable = kd.DecodableCtc
        # Column j of the decodable matrix is transition id j + 1.
        self.tid2pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)[1:]

    def decode(self, loglikes: np.ndarray, utt: str = "?"):
        """The raw state-level lattice of one utterance.

        Args:
          loglikes: ``(T, num_pdfs) float32`` log-likelihoods (unscaled).

        Returns:
          ``kaldifst.Lattice`` whose weights are (graph cost, acoustic cost
          / w0), or None when no final state was reached (as
          :meth:`mtlasr.decode.Decoder.decode`: no partial result).

        Raises:
          ValueError: wrong number of pdf columns, naming the utterance.
        """
        if loglikes.ndim != 2 or loglikes.shape[1] != self.tm.num_pdfs:
            raise ValueError(f"utterance {utt}: log-likelihoods of shape {loglikes.shape}, "
                             f"expected (T, {self.tm.num_pdfs})")
        mat = np.ascontiguousarray(loglikes[:, self.tid2pdf] / self.lattice_lmwt, dtype=np.float32)
        dec = self._decodable(mat)
        if not self.decoder.decode(dec) or not math.isfinite(self.decoder.final_relative_cost()):
            return None
        ok, lat = self.decoder.get_raw_lattice(True)
        if not ok or lat.num_states == 0:
            return None
        return lat


def add_word_penalty(lat, amount: float):
    """Copy of a lattice with ``amount`` added to the acoustic cost (the
    second weight) of every arc with a word (output label != 0).

    A Python pass over the arcs (kaldifst 1.7.17 has no mutable arc iterator
    or arc map for lattices): a few microseconds per arc.

    Args:
      lat: ``kaldifst.Lattice``.

    Returns: a new ``kaldifst.Lattice``.
    """
    import _kaldifst
    import kaldifst

    out = kaldifst.Lattice()
    n = lat.num_states
    for _ in range(n):
        out.add_state()
    out.start = lat.start
    for s in range(n):
        f = lat.final(s)
        if math.isfinite(f.value1):
            out.set_final(s, f)
        it = _kaldifst._ArcIteratorLattice(lat, s)  # kaldifst.ArcIterator takes Std FSTs only
        while not it.done:
            a = it.value
            if a.olabel != 0:
                w = a.weight
                a = kaldifst.LatticeArc(a.ilabel, a.olabel, kaldifst.LatticeWeight(w.value1, w.value2 + amount),
                                        a.nextstate)
            out.add_arc(s, a)
            it.next()
    return out


def best_path(lat, acoustic_scale: float) -> Optional[Path]:
    """Best path of a lattice after scaling its acoustic costs (Kaldi's
    ``lattice-scale --acoustic-scale=acoustic_scale | lattice-best-path``).

    Args:
      lat: ``kaldifst.Lattice`` (left unchanged).
      acoustic_scale: multiplies the second weight of every arc and final
        weight.

    Returns:
      ``(word ids, transition ids (T,), graph cost, scaled acoustic cost)``
      of the path minimising graph + scaled acoustic cost, or None for an
      empty lattice.
    """
    import kaldifst

    if acoustic_scale != 1.0:
        lat = lat.copy()
        kaldifst.scale_lattice([[1.0, 0.0], [0.0, float(acoustic_scale)]], lat)
    path = kaldifst.shortest_path(lat)
    if path.num_states == 0:
        return None
    ok, tids, words, weight = kaldifst.get_linear_symbol_sequence(path)
    if not ok:  # shortest_path(n=1) is linear: a binding change would land here
        raise RuntimeError("the best path of a lattice is not linear")
    return list(words), list(tids), float(weight.value1), float(weight.value2)


def rescore(lat, lattice_lmwt: float, lmwts: Sequence[float], penalties: Iterable[float]
            ) -> Dict[Tuple[float, float], Path]:
    """Best path of a lattice at every LM weight and word insertion penalty.

    Args:
      lat: a lattice from :meth:`LatticeDecoder.decode` at LM weight
        ``lattice_lmwt`` (w0).
      lmwts: LM weights w (> 0); penalties: word insertion penalties p (nats
        per word on the acoustic scale; any sign).

    Returns:
      ``{(w, p): (words, tids, graph cost, acoustic cost)}`` (keys as
      given, e.g. the strings of the scoring dir names), the path
      minimising ``G + A / w + (p / w) N`` (module docstring); its costs are
      G and ``(A + p N) / w``, which add up to what
      :meth:`mtlasr.decode.Decoder.decode` returns as minus its
      log-likelihood at (w, p).

    Raises: ValueError for a non-positive LM weight.
    """
    for w in lmwts:
        if not float(w) > 0:
            raise ValueError(f"LM weight {w} must be positive")
    out = {}
    for p in penalties:
        lat_p = add_word_penalty(lat, float(p) / lattice_lmwt) if float(p) != 0.0 else lat
        for w in lmwts:
            out[(w, p)] = best_path(lat_p, lattice_lmwt / float(w))
    return out


def default_lattice_lmwt(lmwts: Sequence) -> float:
    """The LM weight of the lattice pass when none is given: the middle of
    the sweep (the upper median, ``sorted(lmwts)[len // 2]``), so that the
    weights to rescore lie on both sides of it.

    Raises: ValueError for an empty sweep.
    """
    if not lmwts:
        raise ValueError("no LM weight given")
    ws = sorted(float(w) for w in lmwts)
    return ws[len(ws) // 2]


def assign_lmwts(lmwts: Sequence, lattice_lmwts: Sequence[float]) -> Dict[float, list]:
    """Which lattice rescores which LM weight: each weight of the sweep goes
    to the lattice LM weight nearest to it on a log scale (ties: the smaller
    one), as a far lattice is the likelier to have lost its best path
    (module docstring).

    Args:
      lmwts: the sweep's LM weights (strings or numbers, > 0).
      lattice_lmwts: the LM weights of the lattice passes (> 0).

    Returns:
      ``{lattice LM weight: [its LM weights, in the sweep's order]}``, for
      the lattice LM weights that get at least one.

    Raises: ValueError for an empty list or a non-positive weight.
    """
    if not lattice_lmwts:
        raise ValueError("no lattice LM weight given")
    for w in list(lmwts) + list(lattice_lmwts):
        if not float(w) > 0:
            raise ValueError(f"LM weight {w} must be positive")
    out: Dict[float, list] = {}
    for w in lmwts:
        w0 = min(sorted(float(x) for x in lattice_lmwts), key=lambda x: abs(math.log(float(w) / x)))
        out.setdefault(w0, []).append(w)
    return dict(sorted(out.items()))


def lattice_size(lat) -> Tuple[int, int]:
    """``(states, arcs)`` of a lattice."""
    return lat.num_states, sum(lat.num_arcs(s) for s in range(lat.num_states))
