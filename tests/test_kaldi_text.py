"""Kaldi text export and import (mtlasr.kaldi_text, mtlasr.bin.export_kaldi).

No Kaldi binary is available, so the text is checked against Kaldi's layout
with a line grammar written here from the Write routines of Kaldi's source
(hmm/hmm-topology.cc, hmm/transition-model.cc, gmm/am-diag-gmm.cc,
gmm/diag-gmm.cc, gmm/full-gmm.cc, ivector/ivector-extractor.cc,
matrix/kaldi-vector.cc, kaldi-matrix.cc, packed-matrix.cc): every token,
space and newline in its place, counts consistent, gconsts recomputed here,
values read back exactly. The TransitionModel part is also compared with
the text that kaldi-hmm-gmm's own port of Kaldi's writer prints
(``str(tm)``, 6 significant digits).
"""

import logging
import math
import re

import kaldi_hmm_gmm as khg
import numpy as np
import pytest

from mtlasr import gmm, ivector as iv, kaldi_text as kt, lang
from mtlasr.bin import export_kaldi

NUM = r"-?\d+(?:\.\d*)?(?:e[-+]\d+)?"  # what Kaldi's readers take: a digit or '-' first
VEC = rf" \[ ((?:{NUM} )*)\]"  # Vector::Write: " [ v1 .. vn ]"


# -------------------------------------------------------- the line grammar
class Lines:
    """The file's lines, consumed in order against exact patterns."""

    def __init__(self, text):
        assert text.endswith("\n")
        self.lines, self.i = text[:-1].split("\n"), 0

    def take(self, pattern):
        line = self.lines[self.i] if self.i < len(self.lines) else "<end of file>"
        m = re.fullmatch(pattern, line)
        assert m, f"line {self.i + 1}: {line!r} does not match {pattern!r}"
        self.i += 1
        return m

    def vector(self, prefix):
        """``<TOKEN>  [ v1 .. vn ]`` (WriteToken, then Vector::Write)."""
        m = self.take(re.escape(prefix) + VEC)
        return np.array(m.group(1).split(), dtype=np.float64)

    def matrix(self, prefix, cols):
        """``<TOKEN>  [`` then rows ``  v .. v `` the last closed by ``]``."""
        self.take(re.escape(prefix) + r" \[")
        rows = []
        while True:
            m = self.take(rf"  ((?:{NUM} ){{{cols}}})(\]?)")
            rows.append(m.group(1).split())
            if m.group(2):
                return np.array(rows, dtype=np.float64)

    def sp_matrix(self, prefix, dim):
        """``[`` then row i of the lower triangle (i + 1 numbers), the last
        line closed by ``]``; returned as the full symmetric matrix."""
        self.take(re.escape(prefix) + r"\[")
        a = np.zeros((dim, dim))
        for i in range(dim):
            m = self.take(rf"((?:{NUM} ){{{i + 1}}})" + (r"\]" if i == dim - 1 else ""))
            a[i, :i + 1] = m.group(1).split()
        return a + np.tril(a, -1).T

    def end(self):
        assert self.i == len(self.lines), f"unexpected line {self.i + 1}: {self.lines[self.i]!r}"


def diag_gconsts_here(w, mean, var):
    """gconst = log w - 0.5 (D log 2pi + sum log var + sum mean^2 / var)."""
    return np.log(w) - 0.5 * (mean.shape[1] * math.log(2 * math.pi) + np.log(var).sum(1) + (mean**2 / var).sum(1))


def check_diag_gmm(lines, first_prefix="<DiagGMM> "):
    """One DiagGmm::Write block, its gconsts checked; returns its four fields."""
    lines.take(re.escape(first_prefix))
    gconsts = lines.vector("<GCONSTS> ")
    weights = lines.vector("<WEIGHTS> ")
    c = len(weights)
    assert len(gconsts) == c and c >= 1
    dim = len(lines.lines[lines.i + 1].split())
    mi = lines.matrix("<MEANS_INVVARS> ", dim)
    ivars = lines.matrix("<INV_VARS> ", dim)
    assert mi.shape == ivars.shape == (c, dim)
    lines.take(r"</DiagGMM> ")
    var, mean = 1 / ivars, mi / ivars
    np.testing.assert_allclose(gconsts, diag_gconsts_here(weights, mean, var), rtol=1e-5, atol=1e-4)
    return {"gconsts": gconsts, "weights": weights, "means_invvars": mi, "inv_vars": ivars}


def check_transition_model(lines, topo_entries, phone2idx):
    """TransitionModel::Write with its HmmTopology; returns tuples, log-probs."""
    is_hmm = all(s.__getstate__()[0] == s.__getstate__()[1] for e in topo_entries for s in e)
    for tok in ("<TransitionModel> ", "<Topology> "):
        lines.take(re.escape(tok))
    for i, entry in enumerate(topo_entries):
        lines.take(r"<TopologyEntry> ")
        lines.take(r"<ForPhones> ")
        phones = [int(p) for p in lines.take(r"((?:\d+ )+)").group(1).split()]
        assert phones == [p for p, k in enumerate(phone2idx) if k == i]
        lines.take(r"</ForPhones> ")
        for j, state in enumerate(entry):
            fwd, loop, trans = state.__getstate__()
            pdf = "" if fwd == -1 else (f"<PdfClass> {fwd} " if is_hmm else
                                        f"<ForwardPdfClass> {fwd} <SelfLoopPdfClass> {loop} ")
            m = lines.take(rf"<State> {j} {re.escape(pdf)}((?:<Transition> \d+ {NUM} )*)</State> ")
            got = m.group(1).split()
            assert [(int(got[k + 1]), np.float32(got[k + 2])) for k in range(0, len(got), 3)] == \
                [(d, np.float32(p)) for d, p in trans]
        lines.take(r"</TopologyEntry> ")
    lines.take(r"</Topology> ")
    tag = "Triples" if is_hmm else "Tuples"
    n = int(lines.take(rf"<{tag}> (\d+) ").group(1))
    tuples = [tuple(int(x) for x in lines.take(r"((?:\d+ ){%d})" % (3 if is_hmm else 4)).group(1).split())
              for _ in range(n)]
    lines.take(rf"</{tag}> ")
    lines.take(r"<LogProbs> ")
    log_probs = lines.vector("")
    for tok in ("</LogProbs> ", "</TransitionModel> "):
        lines.take(re.escape(tok))
    return tuples, log_probs


# ------------------------------------------------------------- the models
def equal_alignment(tm, phones, num_frames):
    """Transition ids spending equal time in each state of ``phones`` (the
    3-state left-to-right topology of lang.topology_text)."""
    state = tm.__getstate__()
    tuples, state2id = state[0], state[2]
    tstate = {t.__getstate__()[:2]: k + 1 for k, t in enumerate(tuples)}
    states = [(p, s) for p in phones for s in range(3)]
    bounds = np.linspace(0, num_frames, len(states) + 1).astype(int)
    ali = []
    for (p, s), a, b in zip(states, bounds[:-1], bounds[1:]):
        first = state2id[tstate[(p, s)]]
        ali += [first] * (b - a - 1) + [first + 1]  # self-loops, then the forward transition
    return ali


@pytest.fixture(scope="module")
def mono():
    """A 4-phone monophone model, 4-dim features, mixed up to 2-4 Gaussians."""
    rng = np.random.default_rng(3)
    topo = khg.HmmTopology()
    topo.read(lang.topology_text([1, 2, 3, 4], 3))
    utts = []
    for _ in range(16):
        phones = [int(p) for p in rng.integers(1, 5, size=3)]
        means = np.repeat(np.array(phones, dtype=np.float32), 30)[:, None]  # 30 frames a phone
        utts.append((phones, (rng.standard_normal((90, 4)) + means).astype(np.float32)))
    tm, tree, am = gmm.init_mono(topo, (f for _, f in utts))
    acc = gmm.Accumulator(am, tm)
    for phones, f in utts:
        acc.add(f, equal_alignment(tm, phones, f.shape[0]))
    gmm.update(am, tm, acc, num_gauss=3 * am.num_pdfs, min_count=5.0)
    return tm, tree, am


def random_full_gmm(rng, c=3, f=3):
    a = rng.standard_normal((c, f, f)) * 0.5
    covs = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(f)
    return iv.FullGmm(rng.dirichlet(np.ones(c) * 3), rng.standard_normal((c, f)) * 3, covs)


# -------------------------------------------------------------- the tests
def test_format_floats_round_trip_and_kaldi_look():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000),
                        [0.0, -0.0, 1e-45, 3.4e38, 1.17549435e-38, 0.1, 1 / 3]]).astype(np.float32)
    s = kt.format_floats(x)
    assert all(re.fullmatch(NUM, v) for v in s)
    np.testing.assert_array_equal(np.array(s, dtype=np.float64).astype(np.float32), x)
    assert max(len(v.replace("-", "").split("e")[0].replace(".", "").lstrip("0")) for v in s) <= 9
    assert kt.format_floats([0.75, 1.0, 100.0, -1.3862943649291992, 1e-5]) == \
        ["0.75", "1", "100", "-1.3862944", "1e-05"]  # %g for short values, as Kaldi prints
    d = rng.standard_normal(100)
    np.testing.assert_array_equal(np.array(kt.format_floats(d, double=True), dtype=np.float64), d)
    with pytest.raises(ValueError, match="non-finite"):
        kt.format_floats([1.0, np.nan])


def test_gmm_hmm_text_layout(mono, tmp_path):
    tm, tree, am = mono
    path = tmp_path / "final.mdl"
    kt.write_gmm_hmm(path, tm, am)
    text = path.read_text()
    lines = Lines(text)
    _, phone2idx, entries = tm.__getstate__()[1].__getstate__()
    tuples, log_probs = check_transition_model(lines, entries, phone2idx)

    # Counts: tuples as in the model, LogProbs = transition ids + 1.
    assert tuples == [tuple(t.__getstate__()[:3]) for t in tm.__getstate__()[0]]
    num_tids = sum(len(entries[phone2idx[p]][s].__getstate__()[2]) for p, s, _ in tuples)
    assert num_tids == tm.num_transition_ids and len(log_probs) == num_tids + 1
    np.testing.assert_array_equal(log_probs.astype(np.float32), np.float32(tm.log_probs))

    # The same tokens as kaldi-hmm-gmm's port of TransitionModel::Write.
    ours, theirs = text[:text.index("<DIMENSION>")].split(), str(tm).split()
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a == b or (re.fullmatch(NUM, a) and math.isclose(float(a), float(b), rel_tol=1e-5, abs_tol=1e-6))

    # AmDiagGmm::Write: dimension and pdf count on one line with the first <DiagGMM>.
    m = re.fullmatch(r"<DIMENSION> (\d+) <NUMPDFS> (\d+) <DiagGMM> ", lines.lines[lines.i])
    assert m and (int(m.group(1)), int(m.group(2))) == (am.dim, am.num_pdfs) == (4, tm.num_pdfs)
    for i in range(am.num_pdfs):
        pdf = check_diag_gmm(lines, m.group(0) if i == 0 else "<DiagGMM> ")
        g = am.get_pdf(i)
        for k in ("gconsts", "weights", "means_invvars", "inv_vars"):
            np.testing.assert_array_equal(pdf[k].astype(np.float32), getattr(g, k))
    lines.end()
    assert am.num_gauss > am.num_pdfs  # the mix-up happened

    back = kt.read_gmm_hmm(path)
    assert [t[:3] for t in back.tuples] == tuples and back.dim == 4 and len(back.pdfs) == am.num_pdfs
    np.testing.assert_array_equal(back.log_probs, log_probs)
    np.testing.assert_array_equal(back.pdfs[5]["inv_vars"].astype(np.float32), am.get_pdf(5).inv_vars)
    assert back.topology[0][0] == [1, 2, 3, 4] and back.topology[0][1][3] == (-1, -1, [])


def test_tuples_for_a_topology_that_is_not_an_hmm(tmp_path):
    topo = khg.HmmTopology()
    topo.read("<Topology> <TopologyEntry> <ForPhones> 1 2 </ForPhones>\n"
              "<State> 0 <ForwardPdfClass> 0 <SelfLoopPdfClass> 1 <Transition> 0 0.5 <Transition> 1 0.5 </State>\n"
              "<State> 1 </State> </TopologyEntry> </Topology>\n")
    tm, tree, am = gmm.init_mono(topo, [np.random.default_rng(0).standard_normal((20, 2)).astype(np.float32)])
    kt.write_gmm_hmm(tmp_path / "m", tm, am)
    lines = Lines((tmp_path / "m").read_text())
    _, phone2idx, entries = tm.__getstate__()[1].__getstate__()
    tuples, _ = check_transition_model(lines, entries, phone2idx)
    assert tuples == [(1, 0, 0, 1), (2, 0, 2, 3)]
    assert kt.read_gmm_hmm(tmp_path / "m").tuples == tuples
    kt.write_tree(tmp_path / "tree", tree)
    assert (tmp_path / "tree").read_text().startswith("ContextDependency 1 0 ToPdf ")
    assert not list(tmp_path.glob("*.tmp"))


def test_diag_gmm(tmp_path):
    dg = random_full_gmm(np.random.default_rng(1), c=4, f=3).to_diag()
    kt.write_diag_gmm(tmp_path / "final.dubm", dg)
    lines = Lines((tmp_path / "final.dubm").read_text())
    pdf = check_diag_gmm(lines)  # the gconsts agree with the formula
    lines.end()
    np.testing.assert_array_equal(pdf["weights"].astype(np.float32), np.float32(dg.weights))
    np.testing.assert_allclose(1 / pdf["inv_vars"], dg.vars, rtol=1e-6)
    back = kt.read_diag_gmm(tmp_path / "final.dubm")
    np.testing.assert_allclose(back.vars, dg.vars, rtol=1e-6)
    np.testing.assert_allclose(back.means, dg.means, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(back.weights, dg.weights, rtol=1e-6)


def test_full_gmm(tmp_path):
    fg = random_full_gmm(np.random.default_rng(2), c=3, f=4)
    kt.write_full_gmm(tmp_path / "final.ubm", fg)
    lines = Lines((tmp_path / "final.ubm").read_text())
    lines.take(r"<FullGMM> ")
    gconsts, weights = lines.vector("<GCONSTS> "), lines.vector("<WEIGHTS> ")
    mi = lines.matrix("<MEANS_INVCOVARS> ", 4)
    prec = np.stack([lines.sp_matrix("<INV_COVARS> " if c == 0 else "", 4) for c in range(3)])
    lines.take(r"</FullGMM> ")
    lines.end()
    assert len(gconsts) == len(weights) == mi.shape[0] == 3
    covars = np.linalg.inv(prec)  # the packed lower triangles invert back to the covariances
    np.testing.assert_allclose(covars, fg.covars, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.einsum("cfg,cg->cf", covars, mi), fg.means, rtol=1e-5, atol=1e-5)
    # gconst = log w - 0.5 (D log 2pi + log det Sigma + mu^T Sigma^-1 mu), from the float64 model
    expect = np.log(fg.weights) - 0.5 * (4 * math.log(2 * math.pi) + np.linalg.slogdet(fg.covars)[1]
                                         + np.einsum("cf,cfg,cg->c", fg.means, fg.precisions, fg.means))
    np.testing.assert_allclose(gconsts, expect, rtol=1e-5, atol=1e-4)
    back = kt.read_full_gmm(tmp_path / "final.ubm")
    np.testing.assert_allclose(back.covars, fg.covars, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back.means, fg.means, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(back.weights, fg.weights, rtol=1e-6)


def test_ivector_extractor(tmp_path):
    fg = random_full_gmm(np.random.default_rng(4), c=3, f=3)
    ie = iv.IvectorExtractor.from_full_gmm(fg, 2, prior_offset=10.0, seed=1, init_scale=0.7)
    kt.write_ivector_extractor(tmp_path / "final.ie", ie)
    text = (tmp_path / "final.ie").read_text()
    assert text.startswith("<IvectorExtractor> <w>  [ ]\n<w_vec>  [ ") and text.endswith(
        "<IvectorOffset> 10 </IvectorExtractor> ")
    lines = Lines(text + "\n")
    lines.take(r"<IvectorExtractor> <w>  \[ \]")
    np.testing.assert_array_equal(lines.vector("<w_vec> "), ie.w)
    M = [lines.matrix("<M> 3 " if c == 0 else "", 2) for c in range(3)]
    S = [lines.sp_matrix("<SigmaInv> " if c == 0 else "", 3) for c in range(3)]
    lines.take(r"<IvectorOffset> 10 </IvectorExtractor> ")
    lines.end()
    np.testing.assert_array_equal(np.stack(M), ie.M)  # doubles, exactly
    np.testing.assert_array_equal(np.stack(S), ie.Sigma_inv)
    assert np.allclose(ie.M[:, :, 0] * ie.prior_offset, fg.means)  # Kaldi's convention: means in column 0
    back = kt.read_ivector_extractor(tmp_path / "final.ie")
    for a in ("M", "Sigma_inv", "w"):
        np.testing.assert_array_equal(getattr(back, a), getattr(ie, a))
    assert back.prior_offset == ie.prior_offset


def test_export_kaldi(mono, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    tm, tree, am = mono
    d = tmp_path / "exp"
    d.mkdir()
    gmm.save_model(d / "final.mdl", tm, tree, am)
    fg = random_full_gmm(np.random.default_rng(5), c=2, f=2)
    fg.save(d / "final.ubm")
    fg.to_diag().save(d / "final.dubm")
    iv.IvectorExtractor.from_full_gmm(fg, 2, prior_offset=100.0, seed=0).save(d / "3.ie")
    (d / "final.ie").symlink_to("3.ie")
    assert export_kaldi.main([str(d)]) == 0
    out = d / "kaldi"
    assert sorted(p.name for p in out.iterdir()) == ["final.dubm", "final.ie", "final.mdl", "final.ubm", "tree"]
    assert (out / "tree").read_text().startswith("ContextDependency ")
    assert kt.read_gmm_hmm(out / "final.mdl").dim == 4
    assert kt.read_full_gmm(out / "final.ubm").num_gauss == 2
    assert kt.read_diag_gmm(out / "final.dubm").dim == 2
    assert kt.read_ivector_extractor(out / "final.ie").ivector_dim == 2
    assert "wrote" in caplog.text
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_kaldi.main([str(empty), str(tmp_path / "o")]) == 1
    assert f"{empty}: nothing to export" in caplog.text


def test_malformed_files_are_named(mono, tmp_path):
    dg = random_full_gmm(np.random.default_rng(6), c=2, f=2).to_diag()
    good = tmp_path / "good.dubm"
    kt.write_diag_gmm(good, dg)
    text = good.read_text()
    bad = tmp_path / "bad.dubm"
    bad.write_text(text.replace("<INV_VARS>", "<INV_VARZ>"))
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}:\d+: expected <INV_VARS>, found '<INV_VARZ>'"):
        kt.read_diag_gmm(bad)
    bad.write_text(text[:text.index("<INV_VARS>")])
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}: expected <INV_VARS>, found the end of the file"):
        kt.read_diag_gmm(bad)
    bad.write_text(text.replace("<WEIGHTS>  [ ", "<WEIGHTS>  [ x "))
    with pytest.raises(ValueError, match=r":3: expected a number or '\]' in <WEIGHTS>, found 'x'"):
        kt.read_diag_gmm(bad)
    bad.write_bytes(b"\0B<DiagGMM> ")
    with pytest.raises(ValueError, match="Kaldi binary file"):
        kt.read_diag_gmm(bad)

    tm, _, am = mono
    mdl = tmp_path / "final.mdl"
    kt.write_gmm_hmm(mdl, tm, am)
    lp = mdl.read_text().replace("<LogProbs> \n [ 0 ", "<LogProbs> \n [ ")
    mdl.write_text(lp)
    with pytest.raises(ValueError, match=r"final.mdl:\d+: <LogProbs> has \d+ values, expected \d+"):
        kt.read_gmm_hmm(mdl)
