"""Verification scoring: cosine scores, trials, EER."""

import numpy as np
import pytest
from scipy.stats import norm

from mtlasr.speaker import all_pair_trials, compute_eer, cosine_scores, speaker_means


def test_eer_limits_and_gaussian_scores():
    assert compute_eer([1, 2, 3, 4], [0, 0, 1, 1])[0] == 0.0
    assert compute_eer([1, 2, 3, 4], [1, 1, 0, 0])[0] == 1.0
    rng = np.random.default_rng(0)
    target = rng.random(40000) < 0.3
    scores = rng.standard_normal(40000) + 2.0 * target
    # unit-variance Gaussians two apart cross at 1: EER = Phi(-1)
    assert compute_eer(scores, target)[0] == pytest.approx(norm.cdf(-1.0), abs=0.01)
    assert compute_eer(rng.standard_normal(40000), target)[0] == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="target and non-target"):
        compute_eer([1.0, 2.0], [True, True])


def test_cosine_and_trials():
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    s = cosine_scores(x, x)
    assert s[0, 1] == pytest.approx(1.0) and s[0, 2] == pytest.approx(0.0)
    # centring on a mean changes the geometry
    assert cosine_scores(x, x, mean=np.array([0.5, 0.0]))[1, 2] < 0
    i, j, t = all_pair_trials(["a1", "a2", "b1"], {"a1": "a", "a2": "a", "b1": "b"})
    assert list(zip(i, j, t)) == [(0, 1, True), (0, 2, False), (1, 2, False)]
    with pytest.raises(KeyError, match="c1 has no speaker"):
        all_pair_trials(["a1", "c1"], {"a1": "a"})
    with pytest.raises(ValueError, match="zero norm"):
        cosine_scores(x, x, mean=np.array([1.0, 0.0]))


def test_speaker_means_single_utterance_speaker():
    means, counts = speaker_means({"a1": np.array([1.0, 2.0]), "a2": np.array([3.0, 4.0]),
                                   "b1": np.array([5.0, 6.0])}, {"a1": "a", "a2": "a", "b1": "b"})
    assert means["a"].tolist() == [2.0, 3.0] and means["b"].tolist() == [5.0, 6.0]
    assert counts == {"a": 2, "b": 1}


def test_speaker_means_in_given_speaker_order(caplog):
    vecs = {"b1": np.array([1.0, 1.0]), "a1": np.array([0.5, 2.0]), "a2": np.array([1.5, 0.0])}
    u2s = {"a1": "a", "a2": "a", "b1": "b", "c1": "c"}
    with caplog.at_level("WARNING"):
        means, counts = speaker_means(vecs, u2s, speakers=["a", "b", "c"])
    assert list(means) == ["a", "b"] and list(counts) == ["a", "b"]  # spk2utt order; c has no vector
    assert means["a"].tolist() == [1.0, 1.0] and counts == {"a": 2, "b": 1}
    assert "speaker c: none of its 1 utterances" in caplog.text
    assert list(speaker_means(vecs, u2s)[0]) == ["b", "a"]  # default: order of first appearance
    with pytest.raises(KeyError, match="d1 has no speaker"):
        speaker_means({"d1": np.zeros(2)}, u2s)
