"""Decoding once and rescoring lattices (mtlasr.lattice, decode_loglikes
--rescore true) against re-decoding at every LM weight and word insertion
penalty (mtlasr.decode.Decoder, --rescore false).

With beams wide enough for both searches to be exact, the rescored best
path equals the re-decoded one at every (w, p) of a sweep: same words and
the same total cost. With a finite lattice beam the two can differ: the
lattice keeps only the paths within the lattice beam of the best path at
the lattice's own LM weight, and a path that is best at a far weight can
be outside it (test_narrow_lattice_beam_keeps_only_paths_near_its_weight).

The graph is a small word HCLG made here: a lexicon of 6 words over 5
phones, a full bigram G with random costs, a flat-start monophone model;
the log-likelihoods are random ``(T, num_pdfs) float32`` matrices.
"""

from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT  # noqa: F401  (puts steps/libs on sys.path)
from mtlasr import gmm
from mtlasr.decode import Decoder
from mtlasr.graph import make_hclg, map_arcs
from mtlasr.lang import Lang, prepare_lang
from mtlasr.lattice import (LatticeDecoder, add_word_penalty, assign_lmwts, best_path, default_lattice_lmwt,
                            rescore)

LEXICON = """<unk> spn
ab a b
ba b a
abc a b c
cd c d
dc d c
e e
"""
LMWTS = ["0.5", "1", "2", "4", "8", "16"]
PENALTIES = ["0.0", "3.0", "-2.0"]
WIDE = dict(beam=1.0e4, lattice_beam=1.0e4)  # exact search and lattices with every path


def write_bigram_g(lang: Lang, path: Path, seed: int = 0) -> None:
    """G.fst: a full word bigram (one state per history) with random arc and
    final costs in [0.5, 3) nats, so that LM costs differ between paths."""
    import kaldifst

    rng = np.random.default_rng(seed)
    words = [i for w, i in lang.word2id.items() if w not in ("<eps>", "#0", "<s>", "</s>")]
    g = kaldifst.StdVectorFst()
    start = g.add_state()
    g.start = start
    state = {w: g.add_state() for w in words}
    for s in [start] + list(state.values()):
        if s != start:
            g.set_final(s, float(rng.uniform(0.5, 3.0)))
        for w in words:
            g.add_arc(s, kaldifst.StdArc(w, w, float(rng.uniform(0.5, 3.0)), state[w]))
    kaldifst.arcsort(g, sort_type="ilabel")
    g.write(str(path))


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """(hclg, tm, lang dir) of the small word system."""
    tmp = tmp_path_factory.mktemp("rescore")
    d = tmp / "dict"
    d.mkdir()
    (d / "silence_phones.txt").write_text("sil\nspn\n")
    (d / "nonsilence_phones.txt").write_text("a\nb\nc\nd\ne\n")
    (d / "optional_silence.txt").write_text("sil\n")
    (d / "lexicon.txt").write_text(LEXICON)
    prepare_lang(d, tmp / "lang", "<unk>", sil_prob=0.5, tmp_dir=tmp / "lang_tmp")
    lang = Lang(tmp / "lang")
    write_bigram_g(lang, tmp / "lang" / "G.fst")
    feats = [np.random.default_rng(0).standard_normal((50, 13)).astype(np.float32)]
    tm, tree, _ = gmm.init_mono(lang.topology(), feats)
    return make_hclg(lang, tm, tree), tm, tmp / "lang"


def random_loglikes(tm, num_frames: int, seed: int) -> np.ndarray:
    """``(T, num_pdfs) float32`` log-likelihoods, N(0, 2^2) per cell."""
    return (2.0 * np.random.default_rng(seed).standard_normal((num_frames, tm.num_pdfs))).astype(np.float32)


def redecode(hclg, tm, loglikes, w, p):
    """Best path at (w, p) by re-decoding (decode_loglikes --rescore false), exhaustive search."""
    g = hclg if float(p) == 0.0 else map_arcs(hclg, olabel_penalty=float(p) / float(w))
    return Decoder(g, tm, beam=1.0e4, max_active=10**6, lattice_beam=0.5).decode(loglikes, 1.0 / float(w))


@pytest.mark.parametrize("lattice_lmwt", [2.0, 8.0])
def test_rescoring_equals_redecoding_at_every_weight(system, lattice_lmwt):
    hclg, tm, _ = system
    decoder = LatticeDecoder(hclg, tm, lattice_lmwt, **WIDE)
    distinct, lengths = 0, set()
    for seed, frames in [(1, 40), (2, 55), (3, 70)]:
        m = random_loglikes(tm, frames, seed)
        lat = decoder.decode(m, f"u{seed}")
        assert lat is not None
        paths = rescore(lat, lattice_lmwt, LMWTS, PENALTIES)
        assert sorted(paths) == sorted((w, p) for w in LMWTS for p in PENALTIES)
        for (w, p), (words, tids, graph_cost, acoustic_cost) in paths.items():
            words_ref, ali_ref, like_ref = redecode(hclg, tm, m, w, p)
            assert words == words_ref, (seed, w, p)
            assert len(tids) == frames
            # the same total cost: G + A / w + (p / w) N (mtlasr.lattice)
            assert graph_cost + acoustic_cost == pytest.approx(-like_ref, rel=1e-5, abs=1e-3), (seed, w, p)
            # the costs are what the module docstring says they are
            acoustic = -float(sum(m[t, tm.transition_id_to_pdf(i)] for t, i in enumerate(tids)))
            assert acoustic_cost == pytest.approx((acoustic + float(p) * len(words)) / float(w), rel=1e-4, abs=1e-2)
            lengths.add(len(words))
        distinct += len({tuple(v[0]) for v in paths.values()})
    # The sweep is not degenerate: the best path moves with w and p.
    assert distinct > 3 * 2 and len(lengths) > 2


def test_narrow_lattice_beam_keeps_only_paths_near_its_weight(system):
    """With a finite lattice beam, rescoring is exact at the lattice's own
    LM weight and may differ from re-decoding far from it."""
    hclg, tm, _ = system
    m = random_loglikes(tm, 60, 4)
    narrow = LatticeDecoder(hclg, tm, 4.0, beam=1.0e4, lattice_beam=1.0e-3).decode(m, "u4")
    wide = LatticeDecoder(hclg, tm, 4.0, **WIDE).decode(m, "u4")
    assert narrow.num_states < wide.num_states
    at_w0 = best_path(narrow, 1.0)[0]
    assert at_w0 == redecode(hclg, tm, m, "4", "0.0")[0]
    differs = 0
    for w in LMWTS:
        # the narrow lattice holds the best path at w0 only: rescoring returns it everywhere
        assert rescore(narrow, 4.0, [w], ["0.0"])[(w, "0.0")][0] == at_w0
        differs += redecode(hclg, tm, m, w, "0.0")[0] != at_w0
    assert differs > 0


def test_word_penalty_goes_to_word_arcs_only(system):
    hclg, tm, _ = system
    lat = LatticeDecoder(hclg, tm, 2.0, **WIDE).decode(random_loglikes(tm, 30, 5), "u5")
    words, tids, g, a = best_path(lat, 1.0)
    assert best_path(add_word_penalty(lat, 0.0), 1.0) == (words, tids, g, a)  # a plain copy
    # a small penalty: the same path, its acoustic cost q dearer per word, its graph cost unchanged
    words_q, tids_q, g_q, a_q = best_path(add_word_penalty(lat, 1.0e-3), 1.0)
    assert (words_q, tids_q, g_q) == (words, tids, g) and len(words) > 1
    assert a_q == pytest.approx(a + 1.0e-3 * len(words), abs=1e-4)
    # a huge one: the fewest words
    assert len(best_path(add_word_penalty(lat, 1.0e4), 1.0)[0]) == 1


def test_no_final_state_and_bad_shapes(system):
    hclg, tm, _ = system
    decoder = LatticeDecoder(hclg, tm, 2.0, **WIDE)
    # one frame cannot pass a 3-state HMM: no final state, no partial result
    assert decoder.decode(random_loglikes(tm, 1, 6), "short") is None
    assert redecode(hclg, tm, random_loglikes(tm, 1, 6), "2", "0.0") is None
    with pytest.raises(ValueError, match=r"utterance bad: log-likelihoods of shape \(10, 3\)"):
        decoder.decode(np.zeros((10, 3), np.float32), "bad")
    with pytest.raises(ValueError, match="must be positive"):
        LatticeDecoder(hclg, tm, 0.0)
    with pytest.raises(ValueError, match="LM weight -1 must be positive"):
        rescore(decoder.decode(random_loglikes(tm, 30, 7), "u7"), 2.0, ["-1"], ["0.0"])


def test_default_lattice_lmwt():
    assert default_lattice_lmwt("0.5 0.75 1 1.5 2 3 4 5 6 8 10 12".split()) == 4.0
    assert default_lattice_lmwt(["10", "6"]) == 10.0
    assert default_lattice_lmwt(["7"]) == 7.0
    with pytest.raises(ValueError):
        default_lattice_lmwt([])


def test_assign_lmwts():
    assert assign_lmwts(["0.5", "1", "2", "3", "8"], [1.0, 4.0]) == {1.0: ["0.5", "1", "2"], 4.0: ["3", "8"]}
    assert assign_lmwts(["2"], [4.0, 1.0]) == {1.0: ["2"]}  # a tie on the log scale: the smaller
    assert assign_lmwts(["6", "10"], [8.0, 100.0]) == {8.0: ["6", "10"]}  # a lattice with no weight: none
    with pytest.raises(ValueError, match="must be positive"):
        assign_lmwts(["1"], [0.0])
    with pytest.raises(ValueError, match="no lattice LM weight"):
        assign_lmwts(["1"], [])


@pytest.mark.parametrize("lattice_lmwts", ["", "1 16"])
def test_decode_loglikes_writes_the_same_hypotheses_both_ways(system, tmp_path, lattice_lmwts):
    """The program's outputs with --rescore true (one lattice, or two) and
    false are byte-identical (wide beams), including an utterance that
    reaches no final state."""
    import kaldiio

    from mtlasr.bin import decode_loglikes

    hclg, tm, lang = system
    graph = tmp_path / "graph"
    graph.mkdir()
    hclg.write(str(graph / "HCLG.fst"))
    (graph / "words.txt").write_text((lang / "words.txt").read_text())
    feats = [np.random.default_rng(0).standard_normal((50, 13)).astype(np.float32)]
    _, tree, am = gmm.init_mono(Lang(lang).topology(), feats)
    gmm.save_model(tmp_path / "final.mdl", tm, tree, am)
    mats = {"a1": random_loglikes(tm, 45, 8), "a2": random_loglikes(tm, 1, 9), "a3": random_loglikes(tm, 35, 10)}
    kaldiio.save_ark(str(tmp_path / "loglikes.3.ark"), mats)
    outs = {}
    for mode in ("false", "true"):
        out = tmp_path / f"out_{mode}"
        assert decode_loglikes.main(["--lmwts", "1 4 16", "--word-ins-penalties", "0.0 2.0", "--rescore", mode,
                                     "--lattice-lmwts", lattice_lmwts, "--beam", "1e4", "--max-active", "1000000",
                                     "--lattice-beam", "1e4" if mode == "true" else "0.5",
                                     str(tmp_path / "final.mdl"), str(graph), str(tmp_path / "loglikes.3.ark"),
                                     str(out), "3"]) == 0
        outs[mode] = {p.relative_to(out): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}
    assert sorted(map(str, outs["true"])) == [f"scoring/{w}_{p}/hyp.3.tra" for w in ("16", "1", "4")
                                             for p in ("0.0", "2.0")]
    assert outs["true"] == outs["false"]
    hyps = outs["true"][Path("scoring/4_0.0/hyp.3.tra")].splitlines()
    assert [h.split()[0] for h in hyps] == ["a1", "a2", "a3"] and hyps[1] == "a2"
    assert len({t for t in outs["true"].values()}) > 1  # hypotheses change across the sweep
