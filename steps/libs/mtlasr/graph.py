"""Decoding graph HCLG = min(det(H o min(det(C o min(det(L o G)))))) with self-loops.

The recipe of Mohri, Pereira and Riley (2002), "Weighted finite-state
transducers in speech recognition", as in Kaldi's utils/mkgraph.sh:
disambiguation symbols keep L o G determinizable and are replaced by
epsilon after H is composed; self-loops are added last with
``self_loop_scale`` (0.1 for acoustic models trained on alignments).
"""

from __future__ import annotations

import logging
import time
from typing import Iterable

from .datadir import PathLike

logger = logging.getLogger(__name__)


def map_arcs(fst, ilabel_to_eps: Iterable[int] = (), olabel_penalty: float = 0.0):
    """Copy of ``fst`` with some input labels replaced by epsilon and/or a
    cost added to every arc with a non-epsilon output label (a word
    insertion penalty).

    Args:
      fst: ``kaldifst.StdVectorFst``.
      ilabel_to_eps: input labels to turn into 0 (Kaldi's fstrmsymbols).
      olabel_penalty: cost added per output word.

    Returns: a new ``kaldifst.StdVectorFst``.
    """
    import kaldifst

    drop = set(ilabel_to_eps)
    out = kaldifst.StdVectorFst()
    states = list(kaldifst.StateIterator(fst))
    for _ in states:
        out.add_state()
    out.start = fst.start
    for s in states:
        fw = fst.final(s).value
        if fw != float("inf"):
            out.set_final(s, fw)
        for a in kaldifst.ArcIterator(fst, s):
            il = 0 if a.ilabel in drop else a.ilabel
            w = a.weight.value + (olabel_penalty if a.olabel != 0 else 0.0)
            out.add_arc(s, kaldifst.StdArc(il, a.olabel, w, a.nextstate))
    return out


def make_hclg(lang, tm, tree, self_loop_scale: float = 0.1, transition_scale: float = 1.0):
    """Build HCLG for a lang dir that has G.fst.

    Args:
      lang: :class:`mtlasr.lang.Lang` (with ``G.fst`` in its directory).
      tm, tree: transition model and context dependency (monophone here).

    Returns:
      ``kaldifst.StdVectorFst`` with transition ids (1-based) as input labels
      and word ids as output labels.

    Raises:
      FileNotFoundError: no G.fst.
      RuntimeError: determinization blew up (max states reached).
    """
    import kaldi_hmm_gmm as khg
    import kaldifst

    t0 = time.time()
    g_path = lang.dir / "G.fst"
    if not g_path.is_file():
        raise FileNotFoundError(f"{g_path}: missing (run the LM stage first)")
    G = kaldifst.StdVectorFst.read(str(g_path))
    kaldifst.arcsort(G, sort_type="ilabel")
    L = lang.lexicon_fst(disambig=True)
    kaldifst.arcsort(L, sort_type="olabel")
    LG = kaldifst.compose(L, G)
    if kaldifst.determinize_star(LG, use_log=True):
        raise RuntimeError("determinization of LG stopped early")
    kaldifst.minimize_encoded(LG)
    CLG, ilabels = kaldifst.compose_context(disambig_syms=lang.disambig_ids,
                                            context_width=tree.context_width,
                                            central_position=tree.central_position, ifst=LG)
    kaldifst.arcsort(CLG, sort_type="ilabel")
    H, disambig_tids = khg.get_h_transducer(ilabel_info=ilabels, ctx_dep=tree, trans_model=tm,
                                            config=khg.HTransducerConfig(transition_scale=transition_scale))
    HCLGa = kaldifst.compose(H, CLG)
    if kaldifst.determinize_star(HCLGa, use_log=True):
        raise RuntimeError("determinization of HCLG stopped early")
    HCLGa = map_arcs(HCLGa, ilabel_to_eps=disambig_tids)
    kaldifst.rmepsilon(HCLGa)
    kaldifst.minimize_encoded(HCLGa)
    HCLG = khg.add_self_loops(self_loop_scale=self_loop_scale, disambig_syms=[], reorder=True,
                              trans_model=tm, ifst=HCLGa)
    kaldifst.arcsort(HCLG, sort_type="ilabel")
    logger.info("HCLG: %d states, built in %.2f s", HCLG.num_states, time.time() - t0)
    return HCLG


def read_fst(path: PathLike):
    """Read an OpenFst binary (e.g. HCLG.fst)."""
    import kaldifst

    return kaldifst.StdVectorFst.read(str(path))
