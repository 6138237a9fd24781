"""GMM-UBM and i-vector extractor (mtlasr.ivector), its programs and steps.

Numerical checks against independent computations: scipy's Gaussian
densities, the stacked-supervector form of the i-vector posterior, numerical
integration over w of the frames' likelihood, EM monotonicity and the
invariance of the prior re-parametrisation. Then input validation, the
four steps/ivector/ scripts end to end on the TIMIT sample with tiny
settings, and on a synthetic tiny data dir (no sample needed) where runs are
cut short and resumed.
"""

import logging
import os
import shutil
import subprocess
from pathlib import Path

import kaldiio
import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy.linalg import block_diag
from scipy.stats import multivariate_normal

from mtlasr import features
from mtlasr import ivector as iv

ROOT = Path(__file__).resolve().parent.parent
from conftest import RECIPE, SAMPLE, sh  # noqa: E402


# ------------------------------------------------------------------ helpers
def random_full_gmm(rng, c, f, spread=3.0):
    a = rng.standard_normal((c, f, f)) * 0.5
    covs = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(f)
    return iv.FullGmm(rng.dirichlet(np.ones(c) * 3), rng.standard_normal((c, f)) * spread, covs)


def random_extractor(rng, c=4, f=3, d=2, prior_offset=5.0):
    fgmm = random_full_gmm(rng, c, f)
    return fgmm, iv.IvectorExtractor.from_full_gmm(fgmm, d, prior_offset=prior_offset, seed=1, init_scale=0.7)


def frame_loglike_given_w(ie, x, idx, post, w):
    """sum_t sum_k post_tk log N(x_t; M_c w, Sigma_c), frame by frame (scipy)."""
    sigma = np.linalg.inv(ie.Sigma_inv)
    total = 0.0
    for t in range(x.shape[0]):
        for c, p in zip(idx[t], post[t]):
            if p > 0:
                total += p * multivariate_normal(ie.M[c] @ w, sigma[c]).logpdf(x[t])
    return total


def sample_tv_data(rng, c=4, f=3, d=2, num_utts=40):
    """Utterances from a small total-variability model, with the generating
    Gaussian of each frame as its (hard) posterior."""
    mu = rng.standard_normal((c, f)) * 3
    t_mat = rng.standard_normal((c, f, d))
    chol = np.linalg.cholesky(0.3 * np.eye(f))
    utts = []
    for _ in range(num_utts):
        w = rng.standard_normal(d)
        comp = rng.integers(0, c, rng.integers(50, 150))
        x = mu[comp] + np.einsum("tfd,d->tf", t_mat[comp], w) + rng.standard_normal((len(comp), f)) @ chol.T
        utts.append((x, comp[:, None].astype(np.int32), np.ones((len(comp), 1))))
    return utts


def write_data_dir(d, feats, spk_of):
    """A data dir with feats.scp/cmvn.scp/utt2spk/spk2utt from utt -> (T, F)."""
    d.mkdir(parents=True, exist_ok=True)
    utts = sorted(feats)
    kaldiio.save_ark(str(d / "feats.ark"), {u: feats[u].astype(np.float32) for u in utts},
                     scp=str(d / "feats.scp"))
    spks = sorted({spk_of(u) for u in utts})
    stats = {}
    for s in spks:
        rows = [feats[u] for u in utts if spk_of(u) == s and feats[u].shape[0] > 0]
        x = np.concatenate(rows) if rows else np.zeros((1, next(iter(feats.values())).shape[1]))
        st = np.zeros((2, x.shape[1] + 1))
        st[0, :-1], st[0, -1], st[1, :-1] = x.sum(0), x.shape[0], (x ** 2).sum(0)
        stats[s] = st
    kaldiio.save_ark(str(d / "cmvn.ark"), stats, scp=str(d / "cmvn.scp"))
    (d / "utt2spk").write_text("".join(f"{u} {spk_of(u)}\n" for u in utts))
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(u for u in utts if spk_of(u) == s)}\n" for s in spks))


# ----------------------------------------------------------- GMM densities
def test_diag_and_full_loglikes_match_scipy():
    rng = np.random.default_rng(0)
    for c, k in ((4, 2), (40, 2)):  # the second takes the gathered path (C > 16 K)
        fgmm = random_full_gmm(rng, c, 3)
        dgmm = fgmm.to_diag()
        x = rng.standard_normal((9, 3)) * 2
        ref_full = np.stack([np.log(fgmm.weights[i]) + multivariate_normal(fgmm.means[i], fgmm.covars[i]).logpdf(x)
                             for i in range(c)], 1)
        ref_diag = np.stack([np.log(dgmm.weights[i]) + multivariate_normal(dgmm.means[i], np.diag(dgmm.vars[i])).logpdf(x)
                             for i in range(c)], 1)
        np.testing.assert_allclose(fgmm.loglikes(x), ref_full, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(dgmm.loglikes(x), ref_diag, rtol=1e-10, atol=1e-10)
        g = rng.permuted(np.tile(np.arange(c), (9, 1)), axis=1)[:, :k].astype(np.int32)
        np.testing.assert_allclose(fgmm.loglikes(x, g), np.take_along_axis(ref_full, g, 1), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(dgmm.loglikes(x, g), np.take_along_axis(ref_diag, g, 1), rtol=1e-10, atol=1e-10)
        sel = dgmm.gselect(x, k)
        assert (np.take_along_axis(ref_diag, sel, 1) >= np.sort(ref_diag, 1)[:, -k][:, None] - 1e-12).all()
        assert (np.diff(np.take_along_axis(ref_diag, sel, 1), axis=1) <= 0).all()  # best first


def test_save_load_and_accumulators_add(tmp_path):
    rng = np.random.default_rng(1)
    fgmm = random_full_gmm(rng, 5, 3)
    dgmm = fgmm.to_diag()
    fgmm.save(tmp_path / "a.ubm")
    dgmm.save(tmp_path / "a.dubm")
    assert isinstance(iv.load_gmm(tmp_path / "a.ubm"), iv.FullGmm)
    np.testing.assert_array_equal(iv.load_gmm(tmp_path / "a.dubm").vars, dgmm.vars)
    with pytest.raises(ValueError, match="expected a full_gmm"):
        iv.FullGmm.load(tmp_path / "a.dubm")
    x = rng.standard_normal((300, 3)) * 3
    for gmm in (dgmm, fgmm):
        whole, a, b = iv.make_acc(gmm), iv.make_acc(gmm), iv.make_acc(gmm)
        whole.accumulate(gmm, x)
        a.accumulate(gmm, x[:120])
        b.accumulate(gmm, x[120:])
        b.save(tmp_path / "b.acc")
        a.add(iv.load_acc(tmp_path / "b.acc"))
        np.testing.assert_allclose(a.occ, whole.occ)
        np.testing.assert_allclose(a.x, whole.x)
        assert a.loglike == pytest.approx(whole.loglike)


# ------------------------------------------------------------ UBM training
def test_diag_ubm_em_log_likelihood_rises():
    rng = np.random.default_rng(2)
    true = random_full_gmm(rng, 6, 4)
    comp = rng.choice(6, 4000, p=true.weights)
    x = true.means[comp] + np.einsum("tfg,tg->tf", np.linalg.cholesky(true.covars)[comp],
                                     rng.standard_normal((4000, 4)))
    # Plain EM from random frames (no splitting): monotone.
    _, hist = iv.init_diag_ubm(x, 8, num_gauss_init=8, num_iters=8, min_count=1.0, seed=0)
    assert all(b >= a - 1e-9 for a, b in zip(hist, hist[1:])), hist
    # With splitting, the final count is reached and the last (pure EM) iterations rise.
    gmm, hist = iv.init_diag_ubm(x, 8, num_gauss_init=2, num_iters=8, min_count=1.0, seed=0)
    assert gmm.num_gauss == 8 and hist[-1] >= hist[-2] - 1e-9
    # EM restricted to a fixed Gaussian selection is monotone too.
    g = gmm.gselect(x, 3)
    objf = []
    for _ in range(4):
        acc = iv.DiagGmmAcc(gmm.num_gauss, gmm.dim)
        acc.accumulate(gmm, x, g)
        gmm, o = acc.update(gmm, min_count=1.0)
        objf.append(o)
    assert all(b >= a - 1e-9 for a, b in zip(objf, objf[1:])), objf
    # Full covariances from the diagonal UBM rise well above it.
    full = iv.FullGmm.from_diag(gmm)
    objf = []
    for _ in range(4):
        acc = iv.FullGmmAcc(full.num_gauss, full.dim)
        acc.accumulate(full, x, g)
        full, o = acc.update(full, min_count=1.0)
        objf.append(o)
    assert all(b >= a - 1e-9 for a, b in zip(objf, objf[1:])), objf


def test_min_gaussian_weight_removes_light_gaussians():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1000, 2))
    gmm = iv.DiagGmm(np.array([0.5, 0.5, 1e-8]) / (1 + 1e-8), np.array([[0, 0], [0.5, 0], [50, 50]]),
                     np.ones((3, 2)))
    acc = iv.DiagGmmAcc(3, 2)
    acc.accumulate(gmm, x)
    assert acc.update(gmm, min_count=1.0)[0].num_gauss == 3
    assert acc.update(gmm, min_gaussian_weight=1e-4, min_count=1.0)[0].num_gauss == 2


def test_floor_covariances_is_psd_max():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((5, 3, 2))
    covs = a @ a.transpose(0, 2, 1)  # rank 2: singular
    floor = 0.3 * np.eye(3) + 0.1
    out, n = iv.floor_covariances(covs, floor)
    assert n >= 5
    for s, o in zip(covs, out):
        assert np.linalg.eigvalsh(o - floor).min() > -1e-10
        assert np.linalg.eigvalsh(o - s).min() > -1e-10


# --------------------------------------------------- posteriors and stats
def test_posteriors_sum_to_scale_and_are_pruned():
    rng = np.random.default_rng(5)
    fgmm = random_full_gmm(rng, 12, 3, spread=1.0)
    x = rng.standard_normal((50, 3))
    idx, post = iv.posteriors(fgmm, fgmm.to_diag(), x, num_gselect=6, min_post=0.1, posterior_scale=0.3)
    assert idx.shape == post.shape == (50, 6)
    np.testing.assert_allclose(post.sum(1), 0.3)
    nz = post[post > 0]
    # kept entries were >= min_post before renormalisation, and renormalising only raises them
    assert (nz >= 0.1 * 0.3 - 1e-12).all()
    assert (post == 0).any()
    # the best Gaussian of every frame is kept, even when all are below min_post
    idx, post = iv.posteriors(fgmm, fgmm.to_diag(), x, num_gselect=12, min_post=0.99, posterior_scale=1.0)
    assert ((post > 0).sum(1) >= 1).all()
    np.testing.assert_allclose(post.sum(1), 1.0)


def test_utterance_stats_match_dense_sums():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((20, 3))
    idx = rng.integers(0, 5, (20, 2)).astype(np.int32)
    idx[:, 1] = (idx[:, 0] + 1) % 5
    post = rng.random((20, 2))
    gamma, f, s = iv.utterance_stats(x, idx, post, 5, second_order=True)
    dense = np.zeros((20, 5))
    np.put_along_axis(dense, idx, post, 1)
    np.testing.assert_allclose(gamma, dense.sum(0))
    np.testing.assert_allclose(f, dense.T @ x)
    np.testing.assert_allclose(s, np.einsum("tc,tf,tg->cfg", dense, x, x))


# ------------------------------------------------------ i-vector extractor
def test_posterior_matches_supervector_form():
    rng = np.random.default_rng(7)
    fgmm, ie = random_extractor(rng)
    c, f, d = ie.M.shape
    x = rng.standard_normal((15, f)) * 2
    idx, post = iv.posteriors(fgmm, fgmm.to_diag(), x, num_gselect=3, min_post=0.05, posterior_scale=1.0)
    gamma, first, _ = iv.utterance_stats(x, idx, post, c)
    mean, cov = ie.posterior(gamma[None], first[None])
    # Stacked supervector model: T (CF x D), block-diagonal Sigma^-1 and N.
    t_mat = ie.M.reshape(c * f, d)
    sinv = block_diag(*ie.Sigma_inv)
    n = np.kron(np.diag(gamma), np.eye(f))
    mu0 = ie.prior_mean
    prec = np.eye(d) + t_mat.T @ sinv @ n @ t_mat
    centered = (first - gamma[:, None] * (ie.M @ mu0)).ravel()  # around the mean supervector M mu0
    ref_mean = mu0 + np.linalg.solve(prec, t_mat.T @ sinv @ centered)
    np.testing.assert_allclose(mean[0], ref_mean, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(cov[0], np.linalg.inv(prec), rtol=1e-8, atol=1e-10)
    # The posterior mean maximises the (quadratic) log joint: zero gradient.
    g = np.array([(frame_loglike_given_w(ie, x, idx, post, mean[0] + e) - 0.5 * np.sum((mean[0] + e - mu0) ** 2)
                   - frame_loglike_given_w(ie, x, idx, post, mean[0] - e) + 0.5 * np.sum((mean[0] - e - mu0) ** 2))
                  / 2e-4 for e in 1e-4 * np.eye(d)])
    np.testing.assert_allclose(g, 0.0, atol=1e-5)
    np.testing.assert_allclose(ie.extract(gamma[None], first[None])[0], mean[0] - mu0)


@pytest.mark.parametrize("dim", [1, 2])
def test_log_likelihood_matches_quadrature(dim):
    rng = np.random.default_rng(8 + dim)
    fgmm, ie = random_extractor(rng, d=dim)
    x = rng.standard_normal((12, 3)) * 2
    idx, post = iv.posteriors(fgmm, fgmm.to_diag(), x, num_gselect=3, min_post=0.05, posterior_scale=1.0)
    gamma, first, second = iv.utterance_stats(x, idx, post, ie.num_gauss, second_order=True)
    ll = ie.log_likelihood(gamma[None], first[None], second[None])[0]
    # Gauss-Hermite quadrature around the posterior: w = mean + L z.
    mean, cov = ie.posterior(gamma[None], first[None])
    chol = np.linalg.cholesky(cov[0])
    z1, wq1 = hermegauss(30)
    grids = np.meshgrid(*[z1] * dim, indexing="ij")
    z = np.stack([g.ravel() for g in grids], 1)
    wq = np.prod(np.meshgrid(*[wq1] * dim, indexing="ij"), axis=0).ravel()
    logs = np.array([frame_loglike_given_w(ie, x, idx, post, w)
                     + multivariate_normal(ie.prior_mean, np.eye(dim)).logpdf(w) for w in mean[0] + z @ chol.T])
    terms = logs + 0.5 * (z ** 2).sum(1)  # hermegauss integrates against exp(-z^2/2)
    ref = np.log(np.sum(wq * np.exp(terms - terms.max()))) + terms.max() + np.log(np.linalg.det(chol))
    assert ll == pytest.approx(ref, abs=1e-7)
    assert ie.total_log_likelihood(gamma[None], first[None], second) == pytest.approx(ll)


def test_extractor_em_objective_rises_and_prior_update_keeps_likelihood(tmp_path):
    rng = np.random.default_rng(10)
    utts = sample_tv_data(rng)
    stats = [iv.utterance_stats(x, i, p, 4, second_order=True) for x, i, p in utts]
    gamma = np.stack([s[0] for s in stats])
    first = np.stack([s[1] for s in stats])
    second = np.stack([s[2] for s in stats])
    frames = sum(x.shape[0] for x, _, _ in utts)
    allx = np.concatenate([u[0] for u in utts])
    allc = np.concatenate([u[1][:, 0] for u in utts])
    ubm = iv.FullGmm(np.bincount(allc) / len(allc), np.stack([allx[allc == c].mean(0) for c in range(4)]),
                     np.stack([np.cov(allx[allc == c].T) for c in range(4)]))
    ie = iv.IvectorExtractor.from_full_gmm(ubm, 2, prior_offset=10.0, seed=0)
    objf = []
    for it in range(6):
        # two jobs, summed through files
        accs = []
        for part in (slice(0, 15), slice(15, None)):
            a = iv.IvectorExtractorAcc.for_extractor(ie)
            n = sum(u[0].shape[0] for u in utts[part])
            a.accumulate(ie, gamma[part], first[part], second[part].sum(0), n)
            a.save(tmp_path / f"acc.{it}")
            accs.append(iv.IvectorExtractorAcc.load(tmp_path / f"acc.{it}"))
        accs[0].add(accs[1])
        acc = accs[0]
        assert acc.frames == frames
        assert acc.objf == pytest.approx(ie.log_likelihood(gamma, first, second).sum())
        objf.append(acc.objf_per_frame)
        # The prior's M-step followed by the re-parametrisation: same likelihood.
        no_prior = acc.update(ie, variance_floor_factor=0.1, gaussian_min_count=1.0, update_prior=False)
        m = acc.w_sum / acc.count
        cov = acc.ww_sum / acc.count - np.outer(m, m)
        before = no_prior.log_likelihood(gamma, first, second, prior_mean=m, prior_covar=cov).sum()
        ie = acc.update(ie, variance_floor_factor=0.1, gaussian_min_count=1.0)
        after = ie.log_likelihood(gamma, first, second).sum()
        assert after == pytest.approx(before, rel=1e-10, abs=1e-7)
        assert ie.prior_mean[1:] == pytest.approx(0.0)
    assert all(b >= a - 1e-9 for a, b in zip(objf, objf[1:])), objf
    assert objf[-1] > objf[0] + 0.1
    ie.save(tmp_path / "x.ie")
    back = iv.IvectorExtractor.load(tmp_path / "x.ie")
    np.testing.assert_array_equal(back.M, ie.M)
    assert back.prior_offset == ie.prior_offset


def test_online_ivectors_last_row_is_utterance_ivector():
    rng = np.random.default_rng(11)
    fgmm, ie = random_extractor(rng, c=6, d=3)
    period = 10
    x = rng.standard_normal((41, 3)) * 2  # T - 1 = 40 is a multiple of the period
    idx, post = iv.posteriors(fgmm, fgmm.to_diag(), x, num_gselect=3, min_post=0.025, posterior_scale=1.0)
    online = ie.online_ivectors(x, idx, post, period)
    assert online.shape == (5, 3)
    for k in (0, 2, 4):  # row k: frames 0..k*period
        t = k * period + 1
        g, f, _ = iv.utterance_stats(x[:t], idx[:t], post[:t], ie.num_gauss)
        np.testing.assert_allclose(online[k], ie.extract(g[None], f[None])[0], rtol=1e-10, atol=1e-10)
    assert ie.online_ivectors(x[:43], idx[:43], post[:43], period).shape == (5, 3)  # ceil(43 / 10)


# --------------------------------------------------------- bad input, CLIs
@pytest.fixture
def tiny_extractor_dir(tmp_path):
    """An extractor dir for 2-dim features, delta order 0."""
    rng = np.random.default_rng(12)
    d = tmp_path / "ie"
    d.mkdir()
    fgmm = random_full_gmm(rng, 3, 2, spread=1.0)
    fgmm.save(d / "final.ubm")
    fgmm.to_diag().save(d / "final.dubm")
    iv.IvectorExtractor.from_full_gmm(fgmm, 2, prior_offset=10.0, seed=0).save(d / "final.ie")
    features.write_feature_opts(d, norm_vars=False, delta_order=0)
    (d / "posterior.conf").write_text("--num-gselect=2\n--min-post=0.025\n--posterior-scale=1.0\n")
    return d


def test_empty_utterance_skipped_and_bad_features_named(tmp_path, tiny_extractor_dir, caplog):
    from mtlasr.bin import extract_ivectors

    rng = np.random.default_rng(13)
    feats = {"spkA-u1": rng.standard_normal((30, 2)), "spkA-u2": np.zeros((0, 2)),
             "spkB-u1": rng.standard_normal((25, 2))}
    data = tmp_path / "data"
    write_data_dir(data, feats, lambda u: u.split("-")[0])
    skipped = []
    with caplog.at_level(logging.WARNING):
        got = dict(features.iter_features(data, False, 0, cmvn_mode="speaker", dim=2, skipped=skipped))
    assert sorted(got) == ["spkA-u1", "spkB-u1"]
    assert skipped == [("spkA-u2", "no frames")]
    assert "spkA-u2" in caplog.text
    with pytest.raises(ValueError, match=r"spkA-u1.*does not match the model's 6.*feats\.scp"):
        list(features.iter_features(data, False, 0, cmvn_mode="speaker", dim=6))

    out = tmp_path / "out"
    assert extract_ivectors.main(["--online", "true", "--ivector-period", "10", str(tiny_extractor_dir), str(data),
                                  str(out), "1"]) == 0
    assert (out / "skipped.1").read_text() == "spkA-u2 no frames\n"
    vecs = kaldiio.load_scp(str(out / "ivectors.1.scp"))
    assert sorted(vecs) == ["spkA-u1", "spkB-u1"] and vecs["spkA-u1"].shape == (2,)
    assert kaldiio.load_scp(str(out / "ivector_online.1.scp"))["spkB-u1"].shape == (3, 2)

    feats["spkB-u1"][7, 1] = np.nan
    write_data_dir(data, feats, lambda u: u.split("-")[0])
    with pytest.raises(ValueError, match="utterance spkB-u1: non-finite"):
        list(features.iter_features(data, False, 0, cmvn_mode="speaker"))
    caplog.clear()
    assert extract_ivectors.main(["--online", "false", "--ivector-period", "10", str(tiny_extractor_dir), str(data),
                                  str(tmp_path / "out2"), "1"]) == 1
    assert "utterance spkB-u1: non-finite" in caplog.text
    assert not (tmp_path / "out2" / "ivectors.1.scp").exists()


def test_speaker_mean_of_single_utterance_is_its_ivector(tmp_path):
    from mtlasr.bin import ivector_mean

    vecs = {"a-1": np.array([1.0, 2.0]), "a-2": np.array([3.0, 4.0]), "b-1": np.array([-1.5, 0.25])}
    iv.write_ark_scp(tmp_path / "iv.ark", tmp_path / "iv.scp", vecs.items())
    (tmp_path / "spk2utt").write_text("a a-1 a-2\nb b-1\nc c-1\n")  # c: no i-vector (skipped)
    assert ivector_mean.main([str(tmp_path / "spk2utt"), str(tmp_path / "iv.scp"), str(tmp_path / "spk.ark"),
                              str(tmp_path / "spk.scp"), str(tmp_path / "num_utts.ark")]) == 0
    spk = kaldiio.load_scp(str(tmp_path / "spk.scp"))
    np.testing.assert_array_equal(spk["b"], np.float32([-1.5, 0.25]))
    np.testing.assert_allclose(spk["a"], [2.0, 3.0])
    assert "c" not in spk
    assert (tmp_path / "num_utts.ark").read_text() == "a 2\nb 1\n"


# --------------------------------------------------------- steps end to end
STEPS = ["train_diag_ubm.sh", "train_full_ubm.sh", "train_ivector_extractor.sh", "extract_ivectors.sh"]



def scratch_dir(d):
    """``d`` set up to run the toolkit's steps in (steps/, utils/, path.sh linked)."""
    for name in ("steps", "utils", "path.sh"):
        (d / name).symlink_to(ROOT / name)
    return d


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """The TIMIT sample's train and dev sets with MFCCs and CMVN stats (the
    recipe's stages 0 and 2), and the four steps run on them."""
    if not SAMPLE.is_dir():
        pytest.skip("TIMIT sample not found")
    d = scratch_dir(tmp_path_factory.mktemp("ivector_recipe"))
    sh(f"python3 {RECIPE / 'local/timit_data_prep.py'} {SAMPLE} data", d)
    for s in ("train", "dev"):
        sh(f"steps/make_mfcc.sh --nj 2 --mfcc-config {RECIPE / 'conf/mfcc.conf'} data/{s} exp/make_mfcc/{s} mfcc", d)
        sh(f"steps/compute_cmvn_stats.sh data/{s} exp/make_mfcc/{s} mfcc", d)
    sh("steps/ivector/train_diag_ubm.sh --nj 2 --num-gauss 8 --num-iters-init 4 --num-iters 2 "
       "data/train exp/diag_ubm", d)
    sh("steps/ivector/train_full_ubm.sh --nj 2 --num-iters 2 data/train exp/diag_ubm exp/full_ubm", d)
    sh("steps/ivector/train_ivector_extractor.sh --nj 2 --ivector-dim 5 --num-iters 2 "
       "data/train exp/full_ubm exp/extractor", d)
    sh("steps/ivector/extract_ivectors.sh --nj 2 --online true data/dev exp/extractor exp/ivectors_dev", d)
    return d


def objf(path):
    return [float(line.split()[1]) for line in path.read_text().splitlines()]


def test_steps_end_to_end(recipe):
    exp = recipe / "exp"
    assert iv.DiagGmm.load(exp / "diag_ubm/final.dubm").num_gauss <= 8
    assert iv.FullGmm.load(exp / "full_ubm/final.ubm").dim == 39
    assert (exp / "extractor/cmvn_opts").read_text() == "--norm-vars=true --cmvn-mode=speaker\n"
    assert iv.IvectorExtractor.load(exp / "extractor/final.ie").M.shape[2] == 5
    for name in ("diag_ubm", "full_ubm", "extractor"):
        values = objf(exp / name / "objf")
        assert len(values) == 2 and values[1] > values[0], (name, values)
    assert "iteration 1: log-likelihood per frame" in (exp / "extractor/log/est.1.log").read_text()
    assert "frames/s" in (exp / "extractor/log/acc.1.1.log").read_text()

    out = exp / "ivectors_dev"
    frames = dict(l.split() for l in (recipe / "data/dev/utt2num_frames").read_text().splitlines())
    utt2spk = dict(l.split() for l in (recipe / "data/dev/utt2spk").read_text().splitlines())
    vecs = {k: v for k, v in kaldiio.load_scp(str(out / "ivectors.scp")).items()}
    online = kaldiio.load_scp(str(out / "ivector_online.scp"))
    assert set(vecs) == set(frames) == set(online)
    assert (out / "ivector_period").read_text().strip() == "10"
    assert (out / "skipped_utts").read_text() == ""
    for u, v in vecs.items():
        assert v.shape == (5,) and v.dtype == np.float32 and np.isfinite(v).all()
        assert online[u].shape == (-(-int(frames[u]) // 10), 5)
    spk = kaldiio.load_scp(str(out / "spk_ivectors.scp"))
    counts = dict(l.split() for l in (out / "num_utts.ark").read_text().splitlines())
    assert set(spk) == set(utt2spk.values())
    for s, v in spk.items():
        mine = [vecs[u] for u in vecs if utt2spk[u] == s]
        assert int(counts[s]) == len(mine)
        np.testing.assert_allclose(v, np.mean(mine, axis=0), rtol=1e-5, atol=1e-6)


def test_steps_rerun_skips_and_extractor_resumes(recipe):
    p = sh("steps/ivector/train_diag_ubm.sh --nj 2 --num-gauss 8 --num-iters-init 4 --num-iters 2 "
           "data/train exp/diag_ubm", recipe)
    assert "already trained from these inputs and options; skipping" in p.stderr
    p = sh("steps/ivector/extract_ivectors.sh --nj 2 --online true data/dev exp/extractor exp/ivectors_dev", recipe)
    assert "i-vectors are up to date; skipping" in p.stderr
    # one more extractor iteration: the finished model is continued, not started again
    p = sh("steps/ivector/train_ivector_extractor.sh --nj 2 --ivector-dim 5 --num-iters 3 "
           "data/train exp/full_ubm exp/extractor", recipe)
    assert "continuing the finished model" in p.stderr and "resuming after iteration 1" in p.stderr
    values = objf(recipe / "exp/extractor/objf")
    assert len(values) == 3 and values[2] > values[1]
    assert (recipe / "exp/extractor/final.ie").resolve().name == "3.ie"


def test_extract_step_skips_empty_utterance_and_names_nan_one(recipe):
    scp = dict(l.split(None, 1) for l in (recipe / "data/dev/feats.scp").read_text().splitlines())
    utt2spk = dict(l.split() for l in (recipe / "data/dev/utt2spk").read_text().splitlines())
    spk_a, spk_b = sorted(set(utt2spk.values()))[:2]
    a = sorted(u for u in scp if utt2spk[u] == spk_a)[:3]
    b = sorted(u for u in scp if utt2spk[u] == spk_b)[:1]
    feats = {u: np.array(kaldiio.load_mat(scp[u])) for u in a + b}
    feats[a[1]] = np.zeros((0, 13), dtype=np.float32)
    write_data_dir(recipe / "data/bad", feats, utt2spk.get)
    p = sh("steps/ivector/extract_ivectors.sh --nj 2 data/bad exp/extractor exp/ivectors_bad", recipe)
    out = recipe / "exp/ivectors_bad"
    assert (out / "skipped_utts").read_text() == f"{a[1]} no frames\n"
    assert "1 utterances of data/bad skipped" in p.stderr
    vecs = kaldiio.load_scp(str(out / "ivectors.scp"))
    assert sorted(vecs) == sorted([a[0], a[2], b[0]])
    spk = kaldiio.load_scp(str(out / "spk_ivectors.scp"))
    np.testing.assert_array_equal(spk[spk_b], vecs[b[0]])  # a single utterance: its own i-vector
    assert (out / "num_utts.ark").read_text() == f"{spk_a} 2\n{spk_b} 1\n"

    feats[a[2]][5, 3] = np.nan  # not the speaker's first utterance: its CMVN stats are NaN too
    write_data_dir(recipe / "data/bad", feats, utt2spk.get)
    p = subprocess.run(["bash", "-c", ". ./path.sh && steps/ivector/extract_ivectors.sh --nj 2 --force true "
                        "data/bad exp/extractor exp/ivectors_bad"], cwd=recipe, capture_output=True, text=True)
    assert p.returncode != 0
    assert f"utterance {a[2]}: non-finite features" in p.stderr


def test_cmvn_modes(tmp_path):
    rng = np.random.default_rng(21)
    feats = {"spkA-u1": rng.standard_normal((30, 2)) + 5.0, "spkA-u2": rng.standard_normal((20, 2)) - 1.0}
    data = tmp_path / "data"
    write_data_dir(data, feats, lambda u: u.split("-")[0])
    none = dict(features.iter_features(data, False, 0, cmvn_mode="none"))
    assert np.allclose(none["spkA-u1"], feats["spkA-u1"], atol=1e-5)
    utt = dict(features.iter_features(data, False, 0, cmvn_mode="utterance"))
    assert np.allclose(utt["spkA-u1"].mean(0), 0, atol=1e-5) and np.allclose(utt["spkA-u2"].mean(0), 0, atol=1e-5)
    spk = dict(features.iter_features(data, False, 0, cmvn_mode="speaker"))
    both = np.concatenate([spk["spkA-u1"], spk["spkA-u2"]])
    assert np.allclose(both.mean(0), 0, atol=1e-5) and not np.allclose(spk["spkA-u1"].mean(0), 0, atol=0.1)
    d = tmp_path / "m"
    d.mkdir()
    features.write_feature_opts(d, True, 2, "none")
    assert features.read_cmvn_mode(d) == "none" and features.read_feature_opts(d) == (True, 2)
    with pytest.raises(ValueError, match="cmvn mode 'global'"):
        list(features.iter_features(data, False, 0, cmvn_mode="global"))


# ------------------------------------------- steps on a tiny synthetic data dir
TINY_STEPS = [
    ("diag_ubm", "2.dubm", "steps/ivector/train_diag_ubm.sh --nj 2 --num-gauss 4 --num-iters-init 4 --num-iters 2 "
                           "--num-frames 2000 data/tiny exp/diag_ubm"),
    ("full_ubm", "2.ubm", "steps/ivector/train_full_ubm.sh --nj 2 --num-iters 2 data/tiny exp/diag_ubm exp/full_ubm"),
    ("extractor", "2.ie", "steps/ivector/train_ivector_extractor.sh --nj 2 --ivector-dim 3 --num-iters 2 "
                          "--cleanup false data/tiny exp/full_ubm exp/extractor"),
]


def model_arrays(path):
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def assert_same_model(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k  # bit for bit


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A synthetic data dir (4 speakers x 4 utterances of 13-dim features,
    a speaker offset plus noise) and the four steps run on it."""
    d = scratch_dir(tmp_path_factory.mktemp("ivector_tiny"))
    rng = np.random.default_rng(30)
    feats = {}
    for s in range(4):
        offset = rng.standard_normal(13) * 2
        for u in range(4):
            t = int(rng.integers(80, 140))
            feats[f"spk{s}-u{u}"] = offset + rng.standard_normal((t, 13)) * (1 + 0.3 * rng.random(13))
    write_data_dir(d / "data/tiny", feats, lambda u: u.split("-")[0])
    for _, _, cmd in TINY_STEPS:
        sh(cmd, d)
    sh("steps/ivector/extract_ivectors.sh --nj 2 --online true data/tiny exp/extractor exp/ivectors_tiny", d)
    return d


def test_tiny_steps_end_to_end(tiny):
    exp = tiny / "exp"
    assert iv.DiagGmm.load(exp / "diag_ubm/final.dubm").num_gauss <= 4
    assert iv.FullGmm.load(exp / "full_ubm/final.ubm").dim == 39
    assert iv.IvectorExtractor.load(exp / "extractor/final.ie").M.shape == (4, 39, 3)
    for name in ("diag_ubm", "full_ubm", "extractor"):
        values = objf(exp / name / "objf")
        assert len(values) == 2 and values[1] > values[0], (name, values)
    vecs = kaldiio.load_scp(str(exp / "ivectors_tiny/ivectors.scp"))
    assert len(vecs) == 16 and all(v.shape == (3,) for v in vecs.values())
    assert sorted(kaldiio.load_scp(str(exp / "ivectors_tiny/spk_ivectors.scp"))) == [f"spk{s}" for s in range(4)]


def test_tiny_steps_resume_a_killed_run(tiny):
    """A run killed in its last iteration: the work dir DIR.next holds the
    models up to the one before and a half-written accumulator, and no
    finished DIR exists. A rerun redoes only the last iteration, moves the
    result into place and ends with the same model, bit for bit. The
    extractor first (the UBMs are its inputs), then the full UBM, then the
    diagonal one."""
    exp = tiny / "exp"
    for name, last, cmd in reversed(TINY_STEPS):
        d = exp / name
        ext = last.split(".")[1]
        before = model_arrays(d / f"final.{ext}")
        objf_before = (d / "objf").read_text()
        work = exp / f"{name}.next"
        d.rename(work)
        first_acc_log = work / "log/acc.0.1.log"
        stamp = first_acc_log.stat().st_mtime_ns
        for f in (last, f"final.{ext}", ".train.record"):
            (work / f).unlink()
        shutil.rmtree(work / "kaldi")
        acc = "acc.1.1" if name == "extractor" else "1.1.acc"
        (work / acc).write_bytes(b"PK partial")
        p = sh(cmd, tiny)
        assert f"resuming in {work.relative_to(tiny)}" in p.stderr, (name, p.stderr)
        assert f"resuming after iteration 0 (from 1.{ext})" in p.stderr, (name, p.stderr)
        assert (d / "log/acc.0.1.log").stat().st_mtime_ns == stamp, name  # iteration 0 not redone
        assert "iteration 1: log-likelihood per frame" in p.stderr
        assert "iteration 0: log-likelihood" not in p.stderr
        assert not (d / acc).exists() and not work.exists()
        assert_same_model(model_arrays(d / f"final.{ext}"), before)
        assert (d / "objf").read_text() == objf_before
        assert (d / ".train.record").exists() and os.readlink(d / f"final.{ext}") == last
        assert (d / "kaldi" / f"final.{ext}").is_file()
        p = sh(cmd, tiny)
        assert "already trained from these inputs and options; skipping" in p.stderr


def test_tiny_steps_restart_on_changed_options_or_inputs(tiny):
    """An input rewritten with the same content (a newer time stamp) is not
    a change; changed options start the step again in DIR.next, and the
    new model replaces the finished one at the end."""
    exp = tiny / "exp"
    name, _, cmd = TINY_STEPS[1]
    before = model_arrays(exp / "full_ubm/final.ubm")
    dubm = exp / "diag_ubm/2.dubm"
    os.utime(dubm, ns=(dubm.stat().st_atime_ns, dubm.stat().st_mtime_ns + 10 ** 9))
    p = sh(cmd, tiny)
    assert "already trained from these inputs and options; skipping" in p.stderr
    changed = cmd.replace("--num-iters 2", "--num-iters 2 --num-gselect 3")
    p = sh(changed, tiny)
    assert "train is out of date (the options changed)" in p.stderr
    assert "starting again in" in p.stderr and "iteration 0: log-likelihood" in p.stderr
    after = model_arrays(exp / "full_ubm/final.ubm")
    assert not np.array_equal(after["means"], before["means"])  # 3 Gaussians selected per frame, not 4
    assert "num_gselect=3" in (exp / "full_ubm/.train.record").read_text()
    assert not (exp / "full_ubm.next").exists()
    p = sh(changed, tiny)
    assert "already trained from these inputs and options; skipping" in p.stderr
