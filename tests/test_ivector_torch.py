"""The torch backend of the i-vector jobs (mtlasr.ivector.torch_backend)
against the numpy path: bit for bit where the module docstring says so
(statistics, numpy's summation orders), within 1e-12 relative elsewhere
(posteriors, E-step, i-vectors), on small random data, data drawn from a
total-variability model, MFCCs of the TIMIT sample, and through the
programs and steps (--backend torch). Everything on CPU in float64, one
thread; the CUDA test runs where torch sees a GPU.
"""

import logging

import numpy as np
import pytest
import scipy.sparse
import torch

from mtlasr import features
from mtlasr import ivector as iv
from mtlasr.ivector import torch_backend as tb
from mtlasr.ivector.backend import NumpyBackend, TorchBackend, make_backend
from mtlasr.ivector.posteriors import post_matrix

from conftest import RECIPE, SAMPLE, sh  # noqa: E402
from test_ivector import random_full_gmm, sample_tv_data, scratch_dir, write_data_dir  # noqa: E402

CPU = torch.device("cpu")
REL = 1e-12

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rel_err(a, b):
    """max |a - b| / max |b| (a tensor or array against a numpy array)."""
    a, b = tb.to_numpy(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def assert_equal(a, b, what):
    assert np.array_equal(tb.to_numpy(a), np.asarray(b)), f"{what}: not bit for bit (rel {rel_err(a, b):.2g})"


def t(a, dtype=torch.float64):
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def ubm_posteriors(rng, c, f, frames, k=6, min_post=0.025):
    """A random full UBM, frames drawn from it (so posteriors are peaked, as
    on speech), and their pruned posteriors from the numpy path."""
    fgmm = random_full_gmm(rng, c, f, spread=1.5)
    comp = rng.choice(c, frames, p=fgmm.weights)
    chol = np.linalg.cholesky(fgmm.covars)
    x = fgmm.means[comp] + np.einsum("tfg,tg->tf", chol[comp], rng.standard_normal((frames, f)))
    idx, post = iv.posteriors(fgmm, fgmm.to_diag(), x, k, min_post, 1.0)
    return fgmm, x, idx, post


# ------------------------------------------------- numpy's summation order
def test_segment_sums_are_scipys_row_sums_bit_for_bit():
    """Rows of 0 to 700 entries (every branch of numpy's pairwise sum: < 8,
    blocks of 8 up to 128, halves above), values over 6 decades."""
    rng = np.random.default_rng(40)
    lengths = np.concatenate([np.arange(0, 140), rng.integers(129, 700, 20)])
    rows = rng.permutation(np.repeat(np.arange(len(lengths)), lengths))
    vals = rng.random(rows.size) * 10.0 ** rng.integers(-3, 3, rows.size)
    vals[rng.random(rows.size) < 0.2] = 0.0
    g = scipy.sparse.csr_matrix((vals, (rows, np.arange(rows.size))), shape=(len(lengths), rows.size))
    ref = np.asarray(g.sum(1)).ravel()
    got = tb.segment_sums(t(vals), t(rows, torch.int64), len(lengths))
    assert_equal(got, ref, "row sums")
    # ...which a plain sequential sum is not (the point of reproducing the order)
    seq = torch.zeros(len(lengths), dtype=torch.float64).index_add_(0, t(rows, torch.int64), t(vals))
    assert not np.array_equal(seq.numpy(), ref)
    x = rng.standard_normal((64, 30))
    assert_equal(tb.sum_rows(t(x)), x.sum(0), "sum over rows")


# ------------------------------------------------------------- statistics
@pytest.mark.parametrize("c,frames,k", [(16, 3000, 4), (64, 300, 8)])
def test_utterance_stats_bit_for_bit_on_cpu(c, frames, k):
    """With 3000 frames on 16 Gaussians a Gaussian has hundreds of entries
    (numpy's pairwise sum splits); pruned posteriors leave zeros."""
    rng = np.random.default_rng(41 + c)
    _, x, idx, post = ubm_posteriors(rng, c, 5, frames, k)
    assert (post == 0).any() and (post > 0).sum(1).min() >= 1
    ref = iv.utterance_stats(x, idx, post, c, second_order=True)
    args = (t(x), t(idx, torch.int64), t(post), c)
    for name, got, want in zip(("gamma", "f", "S"), tb.utterance_stats(*args, second_order=True), ref):
        assert_equal(got, want, name)
    gamma, f, s = tb.utterance_stats(*args, second_order=False)
    assert s is None
    assert_equal(f, ref[1], "f without S")
    for got, want in zip(tb.utterance_stats(*args, second_order=True, method="dense"), ref):
        assert rel_err(got, want) <= REL


def test_utterance_stats_reject_bad_input():
    x, idx, post = t(np.zeros((4, 2))), t(np.zeros((4, 2)), torch.int64), t(np.ones((4, 2)))
    with pytest.raises(ValueError, match="outside 0..2"):
        tb.utterance_stats(x, idx + 3, post, 3)
    with pytest.raises(ValueError, match="disagree in frames"):
        tb.utterance_stats(x[:3], idx, post, 3)
    with pytest.raises(ValueError, match="unknown statistics method"):
        tb.utterance_stats(x, idx, post, 3, method="sparse")


@pytest.mark.parametrize("frames", [41, 43, 7])
def test_online_statistics_bit_for_bit_and_ivectors_close(frames):
    """Per-period statistics and their cumulative sums as numpy's
    online_ivectors forms them; the i-vectors within 1e-12."""
    rng = np.random.default_rng(42)
    c, period = 12, 10
    fgmm, x, idx, post = ubm_posteriors(rng, c, 3, frames)
    ie = iv.IvectorExtractor.from_full_gmm(fgmm, 3, prior_offset=10.0, seed=1, init_scale=0.7)
    k = -(-frames // period)
    seg = (np.arange(frames) + period - 1) // period
    use = seg < k
    g = post_matrix(idx[use], post[use], c, seg[use], k)
    gamma = np.cumsum(np.asarray(g.sum(1)).reshape(k, c), axis=0)
    f = np.cumsum(np.asarray(g @ x[use]).reshape(k, c, 3), axis=0)
    tg, tf = tb.segment_stats(t(x), t(idx, torch.int64), t(post), c, period, "exact")
    assert_equal(torch.cumsum(tg, 0), gamma, "cumulative gamma")
    assert_equal(torch.cumsum(tf, 0), f, "cumulative f")
    dg, df = tb.segment_stats(t(x), t(idx, torch.int64), t(post), c, period, "dense")
    assert rel_err(torch.cumsum(dg, 0), gamma) <= REL and rel_err(torch.cumsum(df, 0), f) <= REL
    want = ie.online_ivectors(x, idx, post, period)
    for method in tb.METHODS:
        got = tb.TorchExtractor(ie, CPU, method).online_ivectors(x, idx, post, period)
        assert got.shape == want.shape and rel_err(got, want) <= REL, method
    with pytest.raises(ValueError, match="period >= 1"):
        tb.TorchExtractor(ie, CPU).online_ivectors(x, idx, post, 0)


# ---------------------------------------------------------------- the UBM
@pytest.mark.parametrize("c,k", [(40, 2), (12, 6)])  # gathered (C > 16 K) and one product
def test_gselect_and_posteriors_match(c, k):
    rng = np.random.default_rng(43)
    fgmm, x, _, _ = ubm_posteriors(rng, c, 4, 2000)
    dubm = fgmm.to_diag()
    ubm = tb.TorchUbm(dubm, fgmm, CPU)
    assert_equal(ubm.gselect(x, k), dubm.gselect(x, k), "gselect")
    idx, post = iv.posteriors(fgmm, dubm, x, k, 0.05, 0.7)
    for gather in (True, False):  # False: the GPU's way, here on CPU
        ubm.gather = gather
        got_idx, got_post = ubm.posteriors(x, k, 0.05, 0.7)
        assert_equal(got_idx, idx, "posterior indices")
        assert rel_err(got_post, post) <= REL
        assert rel_err(ubm.full_loglikes(x, got_idx), fgmm.loglikes(x, idx)) <= REL
    with pytest.raises(ValueError, match="do not match"):
        tb.TorchUbm(dubm, random_full_gmm(rng, c + 1, 4), CPU)


# ---------------------------------------------------- extractor and E-step
def tv_batch(rng):
    """Utterance statistics of data from a small total-variability model
    (test_ivector.sample_tv_data), and an extractor trained on it for two
    EM iterations, so that the posteriors are not those of the start."""
    utts = sample_tv_data(rng, c=4, f=3, d=2, num_utts=30)
    stats = [iv.utterance_stats(x, i, p, 4, second_order=True) for x, i, p in utts]
    gamma, f = np.stack([s[0] for s in stats]), np.stack([s[1] for s in stats])
    s_sum = sum(s[2] for s in stats)
    allx = np.concatenate([u[0] for u in utts])
    allc = np.concatenate([u[1][:, 0] for u in utts])
    ubm = iv.FullGmm(np.bincount(allc) / len(allc), np.stack([allx[allc == c].mean(0) for c in range(4)]),
                     np.stack([np.cov(allx[allc == c].T) for c in range(4)]))
    ie = iv.IvectorExtractor.from_full_gmm(ubm, 2, prior_offset=100.0, seed=0)
    for _ in range(2):
        acc = iv.IvectorExtractorAcc.for_extractor(ie)
        acc.accumulate(ie, gamma, f, s_sum, 1000)
        ie = acc.update(ie, variance_floor_factor=0.1, gaussian_min_count=1.0)
    return ie, gamma, f, s_sum, sum(x.shape[0] for x, _, _ in utts)


def assert_acc_matches(got: iv.IvectorExtractorAcc, want: iv.IvectorExtractorAcc, rel=REL):
    for name in ("gamma", "S"):
        assert_equal(getattr(got, name), getattr(want, name), name)
    assert (got.count, got.frames) == (want.count, want.frames)
    for name in ("Y", "R", "w_sum", "ww_sum"):
        assert rel_err(getattr(got, name), getattr(want, name)) <= rel, name
    assert abs(got.objf - want.objf) <= rel * abs(want.objf)


def test_posterior_extract_and_estep_match():
    rng = np.random.default_rng(44)
    ie, gamma, f, s_sum, frames = tv_batch(rng)
    tie = tb.TorchExtractor(ie, CPU)
    mean, cov = ie.posterior(gamma, f)
    got_mean, got_cov = tie.posterior(gamma, f)
    assert rel_err(got_mean, mean) <= REL and rel_err(got_cov, cov) <= REL
    assert rel_err(tie.extract(gamma, f), ie.extract(gamma, f)) <= REL
    assert tie.total_log_likelihood(gamma, f, s_sum) == pytest.approx(ie.total_log_likelihood(gamma, f, s_sum),
                                                                      rel=REL)
    # two batches into one accumulator, as a job does
    want, got = iv.IvectorExtractorAcc.for_extractor(ie), tb.TorchExtractorAcc(tie)
    for part in (slice(0, 17), slice(17, None)):
        ll = want.accumulate(ie, gamma[part], f[part], s_sum, frames)
        assert got.accumulate(tie, t(gamma[part]), t(f[part]), t(s_sum), frames) == pytest.approx(ll, rel=REL)
    assert_acc_matches(got.to_numpy(), want)
    with pytest.raises(ValueError, match="expected"):
        tie.posterior(gamma[:, :3], f)


# --------------------------------------------------- jobs, programs, steps
def test_backends_choose_device_and_refuse_bad_names():
    assert isinstance(make_backend("numpy", "cpu"), NumpyBackend)
    b = make_backend("torch", "cpu")
    assert isinstance(b, TorchBackend) and str(b) == "torch on cpu (exact statistics)"
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        make_backend("jax")
    with pytest.raises(ValueError, match="needs --backend torch"):
        make_backend("numpy", "cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        make_backend("torch", "tpu")
    if not torch.cuda.is_available():
        assert make_backend("torch", "auto").device.type == "cpu"
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            make_backend("torch", "cuda")


def write_model_dir(d, fgmm, ie):
    """An extractor dir as steps/ivector/train_ivector_extractor.sh leaves it
    (features without CMVN and deltas)."""
    d.mkdir(parents=True)
    fgmm.save(d / "final.ubm")
    fgmm.to_diag().save(d / "final.dubm")
    ie.save(d / "final.ie")
    features.write_feature_opts(d, norm_vars=False, delta_order=0, cmvn_mode="none")
    (d / "posterior.conf").write_text("--num-gselect=6\n--min-post=0.025\n--posterior-scale=1.0\n")


@pytest.fixture(scope="module")
def model_data(tmp_path_factory):
    """A data dir of 3 speakers x 3 utterances of 5-dim frames drawn from a
    24-Gaussian UBM, and an extractor dir (D = 4) for it."""
    rng = np.random.default_rng(45)
    d = tmp_path_factory.mktemp("ivector_torch")
    fgmm = random_full_gmm(rng, 24, 5, spread=1.5)
    chol = np.linalg.cholesky(fgmm.covars)
    feats = {}
    for s in range(3):
        shift = rng.standard_normal(5)
        for u in range(3):
            comp = rng.choice(24, int(rng.integers(60, 200)), p=fgmm.weights)
            feats[f"spk{s}-u{u}"] = fgmm.means[comp] + shift + np.einsum(
                "tfg,tg->tf", chol[comp], rng.standard_normal((len(comp), 5)))
    write_data_dir(d / "data", feats, lambda u: u.split("-")[0])
    write_model_dir(d / "ie", fgmm, iv.IvectorExtractor.from_full_gmm(fgmm, 4, prior_offset=100.0, seed=3))
    return d


def test_programs_agree_across_backends(model_data, caplog):
    """ubm_select --full-ubm, ivector_acc and extract_ivectors (with online
    i-vectors) with --backend numpy and torch on CPU."""
    import kaldiio

    from mtlasr.bin import extract_ivectors, ivector_acc, ubm_select

    d, ie_dir = model_data, model_data / "ie"
    caplog.set_level(logging.INFO)
    out = {}
    for backend in ("numpy", "torch"):
        o = d / f"out_{backend}"
        o.mkdir(exist_ok=True)
        opts = ["--backend", backend, "--device", "cpu"]
        assert ubm_select.main(opts + ["--num-gselect", "6", "--full-ubm", str(ie_dir / "final.ubm"), "--min-post",
                                       "0.025", "--posterior-scale", "1.0", str(ie_dir / "final.dubm"),
                                       str(d / "data"), str(o / "post.npz")]) == 0
        # both accumulate from numpy's posteriors, so that only the backend differs
        assert ivector_acc.main(opts + ["--batch-size", "4", str(ie_dir / "final.ie"), str(d / "data"),
                                        str(d / "out_numpy/post.npz"), str(o / "acc")]) == 0
        assert extract_ivectors.main(opts + ["--online", "true", "--ivector-period", "10", str(ie_dir),
                                             str(d / "data"), str(o), "1"]) == 0
        out[backend] = o
    assert "backend: torch on cpu (exact statistics)" in caplog.text
    sel = {b: iv.load_selection(out[b] / "post.npz") for b in out}
    assert sel["numpy"].keys() == sel["torch"].keys()
    for utt, (idx, post) in sel["numpy"].items():
        assert_equal(sel["torch"][utt][0], idx, f"{utt} indices")
        np.testing.assert_allclose(sel["torch"][utt][1], post, rtol=1e-6)  # float32 in the file
    accs = {b: iv.IvectorExtractorAcc.load(out[b] / "acc") for b in out}
    assert_acc_matches(accs["torch"], accs["numpy"])
    for name in ("ivectors", "ivector_online"):
        want = kaldiio.load_scp(str(out["numpy"] / f"{name}.1.scp"))
        got = kaldiio.load_scp(str(out["torch"] / f"{name}.1.scp"))
        assert got.keys() == want.keys() and len(want) == 9
        for utt in want:
            np.testing.assert_allclose(got[utt], want[utt], rtol=1e-6, atol=1e-6 * np.abs(want[utt]).max())


def test_steps_take_backend_option(model_data):
    """steps/ivector/extract_ivectors.sh and train_ivector_extractor.sh with
    --backend torch: the same i-vectors and extractor as numpy's, and
    backend=torch in the record only where it was asked for."""
    import kaldiio

    (model_data / "steps").mkdir()
    d = scratch_dir(model_data / "steps")
    (d / "data").symlink_to(model_data / "data")
    (d / "exp").mkdir()
    (d / "exp/ie").symlink_to(model_data / "ie")
    for name, opts in (("np", ""), ("torch", "--backend torch --device cpu")):
        sh(f"steps/ivector/extract_ivectors.sh --nj 2 {opts} data exp/ie exp/iv_{name}", d)
        sh(f"steps/ivector/train_ivector_extractor.sh --nj 1 --num-iters 1 --ivector-dim 4 {opts} "
           f"data exp/ie exp/tr_{name}", d)
    exp = d / "exp"
    assert "backend" not in (exp / "iv_np/.extract.record").read_text()
    assert "backend=torch device=cpu" in (exp / "iv_torch/.extract.record").read_text()
    assert "backend=torch device=cpu" in (exp / "tr_torch/.train.record").read_text()
    assert "--backend torch --device cpu" in (exp / "tr_torch/log/acc.0.1.log").read_text()
    want, got = kaldiio.load_scp(str(exp / "iv_np/ivectors.scp")), kaldiio.load_scp(str(exp / "iv_torch/ivectors.scp"))
    assert got.keys() == want.keys()
    for utt in want:
        np.testing.assert_allclose(got[utt], want[utt], rtol=1e-6, atol=1e-6 * np.abs(want[utt]).max())
    a, b = iv.IvectorExtractor.load(exp / "tr_np/final.ie"), iv.IvectorExtractor.load(exp / "tr_torch/final.ie")
    assert rel_err(b.M, a.M) <= 1e-10 and rel_err(b.Sigma_inv, a.Sigma_inv) <= 1e-10
    objf = [float((exp / f"tr_{n}/objf").read_text().split()[1]) for n in ("np", "torch")]
    assert objf[1] == pytest.approx(objf[0], rel=1e-10)


# ------------------------------------------------------- the TIMIT sample
@pytest.fixture(scope="module")
def timit_stats(tmp_path_factory):
    """MFCC + deltas of the TIMIT sample's dev set (speaker CMVN), a 64-
    Gaussian UBM trained on them briefly and a 20-dim extractor."""
    if not SAMPLE.is_dir():
        pytest.skip("TIMIT sample not found")
    d = scratch_dir(tmp_path_factory.mktemp("ivector_torch_timit"))
    sh(f"python3 {RECIPE / 'local/timit_data_prep.py'} {SAMPLE} data", d)
    sh(f"steps/make_mfcc.sh --nj 2 --mfcc-config {RECIPE / 'conf/mfcc.conf'} data/dev exp/make_mfcc/dev mfcc", d)
    sh("steps/compute_cmvn_stats.sh data/dev exp/make_mfcc/dev mfcc", d)
    feats = dict(features.iter_features(d / "data/dev", True, 2, cmvn_mode="speaker"))
    x_all = np.concatenate(list(feats.values()))
    dubm, _ = iv.init_diag_ubm(x_all, 64, num_gauss_init=16, num_iters=4, seed=0)
    fgmm = iv.FullGmm.from_diag(dubm)
    acc = iv.FullGmmAcc(fgmm.num_gauss, fgmm.dim)
    acc.accumulate(fgmm, x_all, dubm.gselect(x_all, 20))
    fgmm = acc.update(fgmm)[0]
    return feats, fgmm, iv.IvectorExtractor.from_full_gmm(fgmm, 20, prior_offset=100.0, seed=0)


def test_timit_features_posteriors_stats_and_ivectors(timit_stats):
    feats, fgmm, ie = timit_stats
    dubm = fgmm.to_diag()
    ubm, tie = tb.TorchUbm(dubm, fgmm, CPU), tb.TorchExtractor(ie, CPU)
    want_acc, got_acc = iv.IvectorExtractorAcc.for_extractor(ie), tb.TorchExtractorAcc(tie)
    gammas, fs, s_sum, got_s_sum, frames = [], [], 0, 0, 0
    for utt, x in feats.items():
        idx, post = iv.posteriors(fgmm, dubm, x, 20, 0.025, 1.0)
        got_idx, got_post = ubm.posteriors(x, 20, 0.025, 1.0)
        assert_equal(got_idx, idx, f"{utt} selection")
        assert rel_err(got_post, post) <= REL, utt
        gamma, f, s = iv.utterance_stats(x, idx, post, ie.num_gauss, second_order=True)
        got = tb.utterance_stats(t(x), t(idx, torch.int64), t(post), ie.num_gauss, second_order=True)
        for name, a, b in zip(("gamma", "f", "S"), got, (gamma, f, s)):
            assert_equal(a, b, f"{utt} {name}")
        gammas.append(gamma)
        fs.append(f)
        s_sum, got_s_sum, frames = s_sum + s, got_s_sum + got[2], frames + x.shape[0]
    assert len(feats) >= 16
    gamma, f = np.stack(gammas), np.stack(fs)
    want_acc.accumulate(ie, gamma, f, s_sum, frames)
    got_acc.accumulate(tie, t(gamma), t(f), got_s_sum, frames)
    assert_acc_matches(got_acc.to_numpy(), want_acc)
    assert rel_err(tie.extract(gamma, f), ie.extract(gamma, f)) <= REL


# -------------------------------------------------------------------- GPU
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_matches_numpy():
    """On a GPU (dense statistics, all components' log-likelihoods): the
    same selections, everything else within 1e-12."""
    rng = np.random.default_rng(46)
    cuda = torch.device("cuda")
    fgmm, x, idx, post = ubm_posteriors(rng, 64, 5, 1500, k=8)
    dubm = fgmm.to_diag()
    got_idx, got_post = tb.TorchUbm(dubm, fgmm, cuda).posteriors(x, 8, 0.025, 1.0)
    assert got_idx.device.type == "cuda" and got_post.dtype == torch.float64
    assert_equal(got_idx, idx, "selection")
    assert rel_err(got_post, post) <= REL
    ref = iv.utterance_stats(x, idx, post, 64, second_order=True)
    got = tb.utterance_stats(t(x).to(cuda), t(idx, torch.int64).to(cuda), t(post).to(cuda), 64, True)
    for a, b in zip(got, ref):
        assert rel_err(a, b) <= REL
    ie = iv.IvectorExtractor.from_full_gmm(fgmm, 10, prior_offset=100.0, seed=0)
    tie = tb.TorchExtractor(ie, cuda)
    assert rel_err(tie.online_ivectors(x, idx, post, 10), ie.online_ivectors(x, idx, post, 10)) <= REL
    want, acc = iv.IvectorExtractorAcc.for_extractor(ie), tb.TorchExtractorAcc(tie)
    want.accumulate(ie, ref[0][None], ref[1][None], ref[2], 1500)
    acc.accumulate(tie, got[0][None], got[1][None], got[2], 1500)
    got_acc = acc.to_numpy()
    for name in ("gamma", "S", "Y", "R", "w_sum", "ww_sum"):
        assert rel_err(getattr(got_acc, name), getattr(want, name)) <= REL, name
