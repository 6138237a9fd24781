"""Our models in Kaldi's text format (``--binary=false``), written and read back.

Kaldi reads an object in text mode when its file does not begin with the
binary marker ``\\0B`` (util/kaldi-io.cc, ``InitKaldiInputStream``), so the
files written here can be given as they are to gmm-align, show-transitions,
gmm-copy --binary=true, gmm-global-copy, fgmm-global-copy, ivector-extract.

Layouts, each reproduced from the ``Write(os, binary=false)`` routine of
Kaldi's source (github.com/kaldi-asr/kaldi, master):

* token (base/io-funcs.cc ``WriteToken``): the token and one space;
  integers and floats (``WriteBasicType``): the number and one space.
* Vector (matrix/kaldi-vector.cc): `` [ v1 v2 ... vn ]\\n``.
* Matrix (matrix/kaldi-matrix.cc): `` [``, each row as ``\\n  `` and its
  numbers, each followed by a space, then ``]\\n``; `` [ ]\\n`` if empty.
* SpMatrix (matrix/packed-matrix.cc): ``[\\n``, then row i of the lower
  triangle, ``(i, 0) .. (i, i)`` each followed by a space, one row a line,
  the last line ending in ``]\\n`` instead of ``\\n``. (Older Kaldi wrote
  ``FP n`` and the packed numbers; the reader takes both.)
* HmmTopology, TransitionModel (hmm/), AmDiagGmm, DiagGmm, FullGmm (gmm/),
  IvectorExtractor (ivector/): see the writer of each.

Numbers: Kaldi prints 6 significant digits (the stream default), losing
precision. We print the shortest of ``%.6g`` .. ``%.9g`` closer to the value
than 0.4999 of the gap to the nearer float32 neighbour (so any correct
decimal-to-float conversion gives it back), doubles in Python's shortest
round-trip form: our files round-trip exactly, and short values look as
Kaldi prints them. Non-finite values are refused (Kaldi cannot read back
the ``-inf`` it writes).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import deque
from typing import Dict, Iterable, List, NamedTuple, Sequence, TextIO, Tuple

import numpy as np

from .datadir import PathLike, atomic_open

NO_PDF = -1  # kNoPdf: the pdf class of a non-emitting state (hmm/hmm-topology.h)
LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------- number format
def format_floats(values, double: bool = False) -> List[str]:
    """Decimal strings for ``values`` (any shape, C order), cast to float32
    (float64 when ``double``: a Kaldi double field), each reading back as
    exactly that value (see the module docstring).

    Raises:
      ValueError: a NaN or infinite value.
    """
    x = np.asarray(values, dtype=np.float64 if double else np.float32).ravel()
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"non-finite value {x[bad][0]} at index {int(np.flatnonzero(bad)[0])}: "
                         "Kaldi text cannot hold it")
    if double:
        return [s[:-2] if s.endswith(".0") else s for s in map(repr, x.tolist())]
    exact, ax = x.astype(np.float64), np.abs(x)
    # just under half the gap to the nearer float32 neighbour: the decimal rounds back to x
    slack = 0.4999 * np.minimum(np.spacing(ax), ax - np.nextafter(ax, np.float32(0))).astype(np.float64)
    vals = exact.tolist()
    out = ["%.6g" % v for v in vals]
    todo = np.arange(len(vals))
    for prec in (7, 8, 9):  # 9 significant digits always round-trip a float32
        got = np.array([float(out[i]) for i in todo.tolist()])
        todo = todo[np.abs(got - exact[todo]) > slack[todo]]
        for i in todo.tolist():
            out[i] = "%.*g" % (prec, vals[i])
    return out


# ------------------------------------------------------------------ writer
class KaldiTextWriter:
    """Kaldi's text-mode ``Write`` routines on an open text stream ``f``."""

    def __init__(self, f: TextIO):
        self.f = f

    def token(self, *toks: str) -> None:
        """Each token followed by a space (WriteToken)."""
        self.f.write("".join(t + " " for t in toks))

    def line(self, *toks: str) -> None:
        """Tokens, then a newline (what Kaldi adds after most tokens in text mode)."""
        self.f.write("".join(t + " " for t in toks) + "\n")

    def fields(self, *items) -> None:
        """``(token, write, value)`` triples: the token, then ``write(value)``."""
        for tok, write, value in items:
            self.token(tok)
            write(value)

    def vector(self, v, double: bool = False) -> None:
        """A ``(n,)`` Vector: `` [ v1 ... vn ]\\n``."""
        self.f.write(" [ " + "".join(s + " " for s in format_floats(v, double)) + "]\n")

    def matrix(self, m, double: bool = False) -> None:
        """A ``(rows, cols)`` Matrix, one row a line."""
        m = np.asarray(m)
        if m.ndim != 2:
            raise ValueError(f"a Kaldi Matrix must be 2-dimensional, got shape {m.shape}")
        if m.size == 0:
            self.f.write(" [ ]\n")
            return
        s, c = format_floats(m, double), m.shape[1]
        self.f.write(" [" + "".join("\n  " + "".join(x + " " for x in s[r * c:(r + 1) * c])
                                    for r in range(m.shape[0])) + "]\n")

    def sp_matrix(self, a, double: bool = False) -> None:
        """A symmetric ``(n, n)`` matrix as a packed SpMatrix (lower triangle)."""
        a = np.asarray(a)
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise ValueError(f"a Kaldi SpMatrix must be square, got shape {a.shape}")
        n = a.shape[0]
        if n == 0:
            self.f.write("[ ]\n")
            return
        s = format_floats(a[np.tril_indices(n)], double)  # row-major: (0,0) (1,0) (1,1) (2,0) ...
        rows = ["".join(x + " " for x in s[i * (i + 1) // 2:(i + 1) * (i + 2) // 2]) for i in range(n)]
        self.f.write("[\n" + "\n".join(rows) + "]\n")


# ------------------------------------------------------------------ reader
_TOKEN = re.compile(r"[\[\]]|[^\s\[\]]+")


class KaldiTextReader:
    """Tokens of a Kaldi text file, with the typed reads Kaldi's ``Read``
    routines do. Every error is a ``ValueError`` naming ``name:line``, what
    was expected and what was found."""

    def __init__(self, f: Iterable[str], name: str):
        self.name = name
        self.line = 0
        self._lines = enumerate(f, 1)
        self._buf: deque = deque()

    def fail(self, message: str) -> ValueError:
        return ValueError(f"{self.name}:{self.line}: {message}")

    def next(self, what: str) -> str:
        """The next token (``what`` names it in the error at the end of the file)."""
        while not self._buf:
            nxt = next(self._lines, None)
            if nxt is None:
                raise ValueError(f"{self.name}: expected {what}, found the end of the file")
            self._buf.extend((t, nxt[0]) for t in _TOKEN.findall(nxt[1]))
        tok, self.line = self._buf.popleft()
        return tok

    def expect(self, *tokens: str) -> str:
        """The next token, which must be one of ``tokens``."""
        what = " or ".join(tokens)
        tok = self.next(what)
        if tok not in tokens:
            raise self.fail(f"expected {what}, found {tok!r}")
        return tok

    def convert(self, tok: str, what: str, kind=float):
        """``kind(tok)``; an error naming ``what`` if ``tok`` is not one."""
        try:
            return kind(tok)
        except ValueError:
            raise self.fail(f"expected {what}, found {tok!r}") from None

    def int(self, what: str) -> int:
        """An integer; ``what`` it is names it in errors."""
        what = f"an integer for {what}"
        return self.convert(self.next(what), what, int)

    def float(self, what: str) -> float:
        what = f"a number for {what}"
        return self.convert(self.next(what), what)

    def field(self, token: str, read):
        """``token``, then what ``read`` reads (e.g. ``self.vector``)."""
        self.expect(token)
        return read(token)

    def _numbers_to_bracket(self, what: str) -> List[Tuple[float, int]]:
        """(value, line) pairs up to the closing ``]``."""
        out, what = [], f"a number or ']' in {what}"
        while (tok := self.next(what)) != "]":
            out.append((self.convert(tok, what), self.line))
        return out

    def vector(self, what: str) -> np.ndarray:
        """``[ v1 ... vn ]`` as ``(n,) float64``."""
        self.expect("[")
        return np.array([v for v, _ in self._numbers_to_bracket(what)], dtype=np.float64)

    def matrix(self, what: str) -> np.ndarray:
        """``[ rows ]``, one row a line, as ``(rows, cols) float64``."""
        self.expect("[")
        start, rows = self.line, {}
        for v, ln in self._numbers_to_bracket(what):
            rows.setdefault(ln, []).append(v)
        rows = list(rows.values())
        if not rows:
            return np.zeros((0, 0))
        bad = [i for i, r in enumerate(rows) if len(r) != len(rows[0])]
        if bad:
            raise ValueError(f"{self.name}:{start}: {what}: row {bad[0]} has {len(rows[bad[0]])} numbers, "
                             f"row 0 has {len(rows[0])}")
        return np.array(rows, dtype=np.float64)

    def sp_matrix(self, what: str) -> np.ndarray:
        """A packed SpMatrix (``[ .. ]`` or older ``FP n ..``) as a full
        symmetric ``(n, n) float64``."""
        tok = self.expect("[", "FP", "DP")
        if tok == "[":
            vals = [v for v, _ in self._numbers_to_bracket(what)]
        else:
            n = self.int(f"the size of {what}")
            vals = [self.float(what) for _ in range(n * (n + 1) // 2)]
        n = int(round((math.sqrt(8 * len(vals) + 1) - 1) / 2))
        if n * (n + 1) // 2 != len(vals):
            raise self.fail(f"{what}: {len(vals)} numbers do not make a lower triangle")
        a = np.zeros((n, n))
        a[np.tril_indices(n)] = vals
        return a + np.tril(a, -1).T


@contextlib.contextmanager
def _reader(path: PathLike):
    """A :class:`KaldiTextReader` on the file ``path``. Raises ValueError
    for a Kaldi binary file."""
    with open(path, "rb") as fb:
        if fb.read(2) == b"\0B":
            raise ValueError(f"{path}: a Kaldi binary file; convert it first, e.g. gmm-copy --binary=false, "
                             "gmm-global-copy --binary=false, ivector-extractor-copy --binary=false")
    with open(path, encoding="utf-8") as f:
        yield KaldiTextReader(f, str(path))


# --------------------------------------------------------- DiagGmm / FullGmm
def diag_gconsts(weights, means_invvars, inv_vars) -> np.ndarray:
    """Kaldi's DiagGmm::ComputeGconsts (gmm/diag-gmm.cc), in float64:
    ``log w_c - 0.5 (D log 2pi + sum_d log var_cd + sum_d mean_cd^2 / var_cd)``
    from ``weights (C,)``, ``means_invvars (C, D)`` = mean/var and
    ``inv_vars (C, D)`` = 1/var. Returns ``(C,) float64``."""
    w, mi, iv = (np.asarray(a, dtype=np.float64) for a in (weights, means_invvars, inv_vars))
    return np.log(w) - 0.5 * (mi.shape[1] * LOG_2PI - np.log(iv).sum(1) + (mi * mi / iv).sum(1))


def full_gconsts(weights, means_invcovars, inv_covars) -> np.ndarray:
    """Kaldi's FullGmm::ComputeGconsts (gmm/full-gmm.cc), in float64:
    ``log w_c - 0.5 (D log 2pi + log det S_c + m_c^T S_c m_c)`` with
    ``S_c = inv_covars[c]^-1`` the covariance and ``m_c = means_invcovars[c]``
    = S_c^-1 mu_c (so ``m_c^T S_c m_c = mu_c^T S_c^-1 mu_c``).
    Shapes ``(C,)``, ``(C, D)``, ``(C, D, D)``; returns ``(C,) float64``."""
    w, mi, p = (np.asarray(a, dtype=np.float64) for a in (weights, means_invcovars, inv_covars))
    _, logdet_p = np.linalg.slogdet(p)
    quad = np.einsum("cd,cd->c", mi, np.linalg.solve(p, mi[..., None])[..., 0])
    return np.log(w) - 0.5 * (mi.shape[1] * LOG_2PI - logdet_p + quad)


_GMM_TOKENS = {"diag": ("<DiagGMM>", "<MEANS_INVVARS>", "<INV_VARS>", "</DiagGMM>"),
               "full": ("<FullGMM>", "<MEANS_INVCOVARS>", "<INV_COVARS>", "</FullGMM>")}


def _write_gmm(w: KaldiTextWriter, kind: str, gconsts, weights, means_inv, inv) -> None:
    """DiagGmm::Write (``kind`` "diag", ``inv`` the (C, D) inverse variances:
    ``<DiagGMM> \\n<GCONSTS>`` Vector ``<WEIGHTS>`` Vector ``<MEANS_INVVARS>``
    Matrix ``<INV_VARS>`` Matrix ``</DiagGMM> \\n``) or FullGmm::Write ("full",
    the same with ``<FullGMM>``, ``<MEANS_INVCOVARS>``, ``<INV_COVARS>``
    and C SpMatrix, ``inv`` the (C, D, D) inverse covariances)."""
    head, means_tok, inv_tok, tail = _GMM_TOKENS[kind]
    w.line(head)
    w.fields(("<GCONSTS>", w.vector, gconsts), ("<WEIGHTS>", w.vector, weights), (means_tok, w.matrix, means_inv))
    w.token(inv_tok)
    for m in ([inv] if kind == "diag" else inv):
        (w.matrix if kind == "diag" else w.sp_matrix)(m)
    w.line(tail)


def _read_gmm(r: KaldiTextReader, kind: str) -> Dict[str, np.ndarray]:
    """A ``<DiagGMM>`` or ``<FullGMM>`` (``kind`` as in :func:`_write_gmm`),
    also in the older ``<DiagGMMBegin>`` .. ``<DiagGMMEnd>`` form and without
    gconsts (computed then). Returns float64 arrays keyed gconsts (C,),
    weights (C,) and, lower-cased, the file's two other fields:
    means_invvars (C, D), inv_vars (C, D) or means_invcovars (C, D),
    inv_covars (C, D, D)."""
    head, means_tok, inv_tok, tail = _GMM_TOKENS[kind]
    r.expect(head, head[:-1] + "Begin>")
    gconsts = r.vector("<GCONSTS>") if r.expect("<GCONSTS>", "<WEIGHTS>") == "<GCONSTS>" else None
    weights = r.vector("<WEIGHTS>") if gconsts is None else r.field("<WEIGHTS>", r.vector)
    mi = r.field(means_tok, r.matrix)
    r.expect(inv_tok)
    inv = r.matrix(inv_tok) if kind == "diag" else [r.sp_matrix(inv_tok) for _ in weights]
    r.expect(tail, head[:-1] + "End>")
    c, d = len(weights), mi.shape[1]
    shapes = {np.shape(inv)} if kind == "diag" else {p.shape for p in inv} | {(d, d)}
    if mi.shape[0] != c or shapes != {(c, d) if kind == "diag" else (d, d)} or \
            (gconsts is not None and len(gconsts) != c):
        raise r.fail(f"{head} sizes disagree: {c} weights, {None if gconsts is None else len(gconsts)} gconsts, "
                     f"{means_tok} {mi.shape}, {inv_tok} {sorted(shapes)}")
    inv = np.asarray(inv, dtype=np.float64).reshape((c, d) if kind == "diag" else (c, d, d))
    if gconsts is None:
        gconsts = (diag_gconsts if kind == "diag" else full_gconsts)(weights, mi, inv)
    return {"gconsts": gconsts, "weights": weights, means_tok[1:-1].lower(): mi, inv_tok[1:-1].lower(): inv}


def write_diag_gmm(path: PathLike, gmm) -> None:
    """Write an :class:`mtlasr.ivector.DiagGmm` as Kaldi's ``<DiagGMM>``
    (final.dubm for gmm-global-copy, gmm-gselect), atomically.

    Kaldi keeps float32 ``weights``, ``means_invvars = mean / var`` and
    ``inv_vars = 1 / var``; the gconsts are computed from those float32
    values as Kaldi would (:func:`diag_gconsts`).
    """
    weights = np.asarray(gmm.weights, dtype=np.float32)
    mi = np.asarray(gmm.means / gmm.vars, dtype=np.float32)
    iv = np.asarray(1.0 / gmm.vars, dtype=np.float32)
    with atomic_open(path) as f:
        _write_gmm(KaldiTextWriter(f), "diag", diag_gconsts(weights, mi, iv), weights, mi, iv)


def read_diag_gmm(path: PathLike):
    """Read a text ``<DiagGMM>`` (e.g. from gmm-global-copy --binary=false)
    as an :class:`mtlasr.ivector.DiagGmm` (variances ``1 / inv_vars``,
    means ``means_invvars / inv_vars``, in float64).

    Raises:
      ValueError: malformed file (naming file, line, expected and found token).
    """
    from . import ivector

    with _reader(path) as r:
        d = _read_gmm(r, "diag")
    return ivector.DiagGmm(d["weights"], d["means_invvars"] / d["inv_vars"], 1.0 / d["inv_vars"])


def write_full_gmm(path: PathLike, gmm) -> None:
    """Write an :class:`mtlasr.ivector.FullGmm` as Kaldi's ``<FullGMM>``
    (final.ubm for fgmm-global-copy, ivector-extractor-init), atomically:
    ``<MEANS_INVCOVARS>`` holds ``Sigma_c^-1 mu_c`` and ``<INV_COVARS>``
    the packed ``Sigma_c^-1``, all float32; gconsts from the values written
    (:func:`full_gconsts`).
    """
    weights = np.asarray(gmm.weights, dtype=np.float32)
    mi = np.einsum("cfg,cg->cf", gmm.precisions, gmm.means).astype(np.float32)
    prec = np.asarray(gmm.precisions, dtype=np.float32)
    with atomic_open(path) as f:
        _write_gmm(KaldiTextWriter(f), "full", full_gconsts(weights, mi, prec), weights, mi, prec)


def read_full_gmm(path: PathLike):
    """Read a text ``<FullGMM>`` as an :class:`mtlasr.ivector.FullGmm`
    (covariances = inverses of ``<INV_COVARS>``, means = covariance times
    ``<MEANS_INVCOVARS>``, float64). The gconsts in the file are not used,
    as Kaldi's FullGmm::Read recomputes them.

    Raises:
      ValueError: malformed file, or sizes that disagree (naming the line).
    """
    from . import ivector

    with _reader(path) as r:
        d = _read_gmm(r, "full")
    covars = np.linalg.inv(d["inv_covars"])
    return ivector.FullGmm(d["weights"], np.einsum("cfg,cg->cf", covars, d["means_invcovars"]), covars)


# ------------------------------------------------------------ GMM-HMM model
class GmmHmm(NamedTuple):
    """A Kaldi GMM-HMM (TransitionModel + AmDiagGmm), from :func:`read_gmm_hmm`.

    Attributes:
      topology: per ``<TopologyEntry>``, ``(phones, states)``: its phones and
        per state ``(forward_pdf_class, self_loop_pdf_class, [(dest_state,
        prob), ...])``, pdf classes ``NO_PDF`` for the final state.
      tuples: ``(phone, hmm_state, forward_pdf, self_loop_pdf)`` per
        transition state (1-based in Kaldi, index 0 here).
      log_probs: ``(num_transition_ids + 1,) float64``, index 0 unused.
      dim: feature dimension D.
      pdfs: per pdf, a dict of gconsts (C,), weights (C,), means_invvars
        (C, D), inv_vars (C, D), float64.
    """
    topology: List[Tuple[List[int], List[Tuple[int, int, List[Tuple[int, float]]]]]]
    tuples: List[Tuple[int, int, int, int]]
    log_probs: np.ndarray
    dim: int
    pdfs: List[Dict[str, np.ndarray]]


def _write_topology(w: KaldiTextWriter, phone2idx: Sequence[int], entries, is_hmm: bool) -> None:
    """HmmTopology::Write, text branch: ``<PdfClass>`` when every state's
    forward and self-loop pdf classes agree, else the pair of
    ``<ForwardPdfClass>`` / ``<SelfLoopPdfClass>``."""
    w.line("<Topology>")
    for i, states in enumerate(entries):
        w.line("<TopologyEntry>")
        w.line("<ForPhones>")
        w.line(*(str(p) for p, idx in enumerate(phone2idx) if idx == i))
        w.line("</ForPhones>")
        for j, (fwd, loop, trans) in enumerate(states):
            w.token("<State>", str(j))
            if fwd != NO_PDF:
                w.token(*(("<PdfClass>", str(fwd)) if is_hmm else
                          ("<ForwardPdfClass>", str(fwd), "<SelfLoopPdfClass>", str(loop))))
            probs = format_floats([p for _, p in trans])
            w.line(*(t for (dest, _), p in zip(trans, probs) for t in ("<Transition>", str(dest), p)), "</State>")
        w.line("</TopologyEntry>")
    w.line("</Topology>")


def write_gmm_hmm(path: PathLike, tm, am) -> None:
    """Write a kaldi-hmm-gmm ``TransitionModel`` and ``AmDiagGmm`` as Kaldi's
    text ``final.mdl`` (as gmm-copy --binary=false writes it), atomically,
    from the objects' pickled state (the binding has no writer for them).

    Layout: TransitionModel::Write (``<TransitionModel>``, the topology,
    ``<Triples> N`` and a ``phone hmm-state pdf`` line per transition
    state, or ``<Tuples>`` with the self-loop pdf as a fourth column when
    the topology is not a plain HMM (IsHmm), ``<LogProbs>`` Vector and the
    closing tokens), then AmDiagGmm::Write (``<DIMENSION> D <NUMPDFS> P``
    and P ``<DiagGMM>``).

    Raises:
      ValueError: pdf counts of ``tm`` and ``am`` differ, a pdf whose
        gconsts are not computed (as Kaldi's DiagGmm::Write), or a
        non-finite number.
    """
    tuples_, topo, _, _, _, num_pdfs, log_probs, _ = tm.__getstate__()
    _, phone2idx, entries = topo.__getstate__()
    entries = [[s.__getstate__() for s in e] for e in entries]
    tuples = [tuple(t.__getstate__()) for t in tuples_]
    is_hmm = all(fwd == loop for e in entries for fwd, loop, _ in e)
    if am.num_pdfs != num_pdfs:
        raise ValueError(f"{path}: the transition model has {num_pdfs} pdfs, the acoustic model {am.num_pdfs}")
    with atomic_open(path) as f:
        w = KaldiTextWriter(f)
        w.line("<TransitionModel>")
        _write_topology(w, phone2idx, entries, is_hmm)
        tag = "Triples" if is_hmm else "Tuples"
        w.line(f"<{tag}>", str(len(tuples)))
        for tup in tuples:
            w.line(*map(str, tup[:3] if is_hmm else tup))
        w.line(f"</{tag}>")
        w.line("<LogProbs>")
        w.vector(log_probs)
        w.line("</LogProbs>")
        w.line("</TransitionModel>")
        w.token("<DIMENSION>", str(am.dim), "<NUMPDFS>", str(am.num_pdfs))
        for i in range(am.num_pdfs):
            g = am.get_pdf(i)
            if not g.valid_gconsts:
                raise ValueError(f"{path}: pdf {i} has no valid gconsts; call am.compute_gconsts() first")
            _write_gmm(w, "diag", g.gconsts, g.weights, g.means_invvars, g.inv_vars)


def _read_topology(r: KaldiTextReader) -> list:
    """HmmTopology::Read, text branch."""
    r.expect("<Topology>")
    entries = []
    while r.expect("<TopologyEntry>", "</Topology>") == "<TopologyEntry>":
        r.expect("<ForPhones>")
        phones = []
        while (tok := r.next("a phone or </ForPhones>")) != "</ForPhones>":
            phones.append(r.convert(tok, "a phone or </ForPhones>", int))
        states = []
        while r.expect("<State>", "</TopologyEntry>") == "<State>":
            if (n := r.int("a state number")) != len(states):
                raise r.fail(f"expected state {len(states)}, found {n}")
            fwd = loop = NO_PDF
            tok = r.next("<PdfClass>, <ForwardPdfClass>, <Transition> or </State>")
            if tok in ("<PdfClass>", "<ForwardPdfClass>"):
                fwd = loop = r.int("a pdf class")
                if tok == "<ForwardPdfClass>":
                    loop = r.field("<SelfLoopPdfClass>", r.int)
                tok = r.next("<Transition> or </State>")
            trans = []
            while tok == "<Transition>":
                trans.append((r.int("a <Transition> destination"), r.float("a <Transition> probability")))
                tok = r.next("<Transition> or </State>")
            if tok != "</State>":
                raise r.fail(f"expected <Transition> or </State>, found {tok!r}")
            states.append((fwd, loop, trans))
        entries.append((phones, states))
    return entries


def read_gmm_hmm(path: PathLike) -> GmmHmm:
    """Read a Kaldi text GMM-HMM (``gmm-copy --binary=false final.mdl``) as
    a :class:`GmmHmm` (plain Python lists and float64 arrays).

    Raises:
      ValueError: malformed file (file, line, token expected and found), or
        counts that disagree (LogProbs length against the number of
        transition ids the topology implies, pdf dimensions).
    """
    with _reader(path) as r:
        r.expect("<TransitionModel>")
        topology = _read_topology(r)
        tag = r.expect("<Triples>", "<Tuples>")
        width = 3 if tag == "<Triples>" else 4
        tuples = [tuple(t + [t[2]] if width == 3 else t)  # a triple's self-loop pdf is its forward pdf
                  for t in ([r.int(f"a field of {tag}") for _ in range(width)]
                            for _ in range(r.int(f"the size of {tag}")))]
        r.expect(tag.replace("<", "</"))
        log_probs = r.field("<LogProbs>", r.vector)
        r.expect("</LogProbs>")
        r.expect("</TransitionModel>")
        phone2states = {p: states for phones, states in topology for p in phones}
        try:
            num_tids = sum(len(phone2states[p][s][2]) for p, s, _, _ in tuples)
        except (KeyError, IndexError):
            raise r.fail(f"{tag} refer to a phone or HMM state the topology lacks") from None
        if len(log_probs) != num_tids + 1:
            raise r.fail(f"<LogProbs> has {len(log_probs)} values, expected {num_tids + 1} "
                         f"(transition ids + 1)")
        dim = r.field("<DIMENSION>", r.int)
        pdfs = [_read_gmm(r, "diag") for _ in range(r.field("<NUMPDFS>", r.int))]
        bad = [i for i, p in enumerate(pdfs) if p["inv_vars"].shape[1] != dim]
        if bad:
            raise r.fail(f"pdf {bad[0]} has dimension {pdfs[bad[0]]['inv_vars'].shape[1]}, <DIMENSION> is {dim}")
    return GmmHmm(topology, tuples, log_probs, dim, pdfs)


def write_tree(path: PathLike, tree, binary: bool = False) -> None:
    """Write a kaldi-hmm-gmm ``ContextDependency`` in Kaldi's format with its
    own writer (text unless ``binary``), atomically (temporary name, then
    ``os.replace``)."""
    with atomic_open(path, "wb") as f:  # the binding writes to a file name: give it the temporary one
        tree.write(binary, f.name)


# ------------------------------------------------------ i-vector extractor
def write_ivector_extractor(path: PathLike, ie) -> None:
    """Write an :class:`mtlasr.ivector.IvectorExtractor` as Kaldi's
    ``<IvectorExtractor>`` (final.ie for ivector-extract), atomically.

    Our ``M[c]`` (F x D, UBM mean / prior_offset in column 0), ``Sigma_inv[c]``
    and prior ``N([prior_offset, 0, ...], I)`` are Kaldi's ``M_[c]``,
    ``Sigma_inv_[c]`` and GetIvectorDistPrior's: no conversion. Without
    weight projections ``<w>`` is empty and ``<w_vec>`` holds the UBM weights
    ``ie.w``, as ivector-extractor-init --use-weights=false leaves them.
    Layout (IvectorExtractor::Write, doubles): ``<IvectorExtractor> <w>``
    Matrix ``<w_vec>`` Vector ``<M> C`` C Matrix ``<SigmaInv>`` C SpMatrix
    ``<IvectorOffset> x </IvectorExtractor> `` (no final newline).
    """
    with atomic_open(path) as f:
        w = KaldiTextWriter(f)
        w.fields(("<IvectorExtractor> <w>", w.matrix, np.zeros((0, 0))),
                 ("<w_vec>", lambda v: w.vector(v, double=True), ie.w))
        w.token("<M>", str(ie.num_gauss))
        for m in ie.M:
            w.matrix(m, double=True)
        w.token("<SigmaInv>")
        for s in ie.Sigma_inv:
            w.sp_matrix(s, double=True)
        w.token("<IvectorOffset>", format_floats([ie.prior_offset], double=True)[0], "</IvectorExtractor>")


def read_ivector_extractor(path: PathLike):
    """Read a text ``<IvectorExtractor>`` (ivector-extractor-copy
    --binary=false) as an :class:`mtlasr.ivector.IvectorExtractor`.

    Raises:
      ValueError: malformed file, sizes that disagree, or weight projections
        (non-empty ``<w>``, --use-weights=true), which our model lacks.
    """
    from . import ivector

    with _reader(path) as r:
        r.expect("<IvectorExtractor>")
        if r.field("<w>", r.matrix).size:
            raise r.fail("<w> is not empty: extractors with weight projections (--use-weights=true) "
                         "are not supported")
        w_vec = r.field("<w_vec>", r.vector)
        c = r.field("<M>", r.int)
        M = [r.matrix("<M>") for _ in range(c)]
        r.expect("<SigmaInv>")
        sigma_inv = [r.sp_matrix("<SigmaInv>") for _ in range(c)]
        offset = r.field("<IvectorOffset>", r.float)
        r.expect("</IvectorExtractor>")
        shapes = {m.shape for m in M}
        if len(shapes) != 1 or len(w_vec) != c or {s.shape for s in sigma_inv} != {(M[0].shape[0],) * 2}:
            raise r.fail(f"<IvectorExtractor> sizes disagree: {c} Gaussians, {len(w_vec)} weights, "
                         f"M {sorted(shapes)}, SigmaInv {sorted({s.shape for s in sigma_inv})}")
    return ivector.IvectorExtractor(np.stack(M), np.stack(sigma_inv), w_vec, offset)
