"""Speaker embeddings from a network's pooled head and their verification
scoring on trial lists (seed 003's EER): trial-list formats and errors,
embeddings equal to the head's own pooled representation, the EER program
on a trial list."""

import logging

import kaldiio
import numpy as np
import pytest
import torch

from mtlasr.bin import extract_embeddings, ivector_eer
from mtlasr.features import cmvn_stats, load_features
from mtlasr.nnet.config import load_config
from mtlasr.nnet.build import build_model, load_for_inference
from mtlasr.speaker import read_trials


def test_read_trials_both_orders_and_errors(tmp_path):
    known = {"a1", "a2", "b1"}
    p = tmp_path / "trials"
    p.write_text("# VoxCeleb order\n1 a1 a2\n0 a1 b1\n\na2 b1 nontarget\na1 a2 target  # Kaldi order\n")
    pairs, target = read_trials(p, known)
    assert pairs == [("a1", "a2"), ("a1", "b1"), ("a2", "b1"), ("a1", "a2")]
    assert target.tolist() == [True, False, False, True]
    p.write_text("1 a1 a2\n0 a1 zz\n0 yy a2\n")
    with pytest.raises(ValueError, match=r"2 trial sides name utterances without an embedding, e\.g\. zz \(line 2\)"):
        read_trials(p, known)
    p.write_text("1 a1 a2\n0 a1\n")
    with pytest.raises(ValueError, match=r"trials:2: not"):
        read_trials(p, known)
    p.write_text("1 a1 a2\n")
    with pytest.raises(ValueError, match="needs target and non-target trials"):
        read_trials(p, known)
    with pytest.raises(FileNotFoundError):
        read_trials(tmp_path / "none", known)


@pytest.fixture
def spk_model(tmp_path):
    """A tiny CTC model with a mean-pooled speaker head, as a checkpoint, and
    a data dir of 3 speakers whose features carry a speaker offset."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    offsets = 2.0 * rng.standard_normal((3, 5))
    utt2spk = {f"s{s}_u{i}": f"s{s}" for s in range(3) for i in range(4)}
    with kaldiio.WriteHelper(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as w:
        feats = {}
        for u, s in utt2spk.items():
            feats[u] = (offsets[int(s[1])] + rng.standard_normal((20 + len(feats), 5))).astype(np.float32)
            w(u, feats[u])
    with kaldiio.WriteHelper(f"ark,scp:{data}/cmvn.ark,{data}/cmvn.scp") as w:
        for s in sorted(set(utt2spk.values())):
            w(s, cmvn_stats(np.concatenate([x for u, x in feats.items() if utt2spk[u] == s])))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    cfg = load_config(None, ["model.encoder=conv_blstm", "model.criterion=ctc", "model.num_layers=1",
                             "model.cell_dim=8", "model.conv_channels=[4]", "model.conv_dim=8",
                             "model.subsampling=2", "features.norm_vars=false",
                             "tasks.spk.targets=utt_label", "tasks.spk.source={data}/utt2spk",
                             "tasks.spk.loss=aam", "tasks.spk.pooling=mean"])
    model = build_model(cfg, 5, 4, {"spk": 3})
    exp = tmp_path / "exp"
    exp.mkdir()
    torch.save({"config": cfg, "input_dim": 5, "num_pdfs": 4, "task_dims": {"spk": 3},
                "model": model.state_dict()}, exp / "final.pt")
    return tmp_path, data, exp, model, utt2spk


def test_embeddings_and_eer_on_a_trial_list(spk_model, caplog):
    tmp, data, exp, model, utt2spk = spk_model
    out = tmp / "emb"
    assert extract_embeddings.main(["--task", "spk", str(exp), str(data), str(out)]) == 0
    emb = {u: v for u, v in kaldiio.load_scp(str(out / "embeddings.scp")).items()}
    assert sorted(emb) == sorted(utt2spk) and all(v.shape == (16,) for v in emb.values())
    # the embedding is the input of the head's cosine output layer: the head's
    # outputs on the utterance are its cosines with the class vectors
    m, _ = load_for_inference(exp / "final.pt", heads=["spk"])
    x = torch.from_numpy(load_features(data, norm_vars=False)["s1_u2"])[None]
    with torch.no_grad():
        want = m(x, heads=["spk"], lengths=torch.tensor([x.shape[1]]))["spk"][0]
        w = torch.nn.functional.normalize(m.heads["spk"].out.weight, dim=-1)
        cos = torch.nn.functional.normalize(torch.tensor(emb["s1_u2"]), dim=-1) @ w.T
    assert torch.allclose(cos, want, atol=1e-5)
    trials = tmp / "trials"
    utts = sorted(utt2spk)
    lines = [f"{int(utt2spk[a] == utt2spk[b])} {a} {b}" for k, a in enumerate(utts) for b in utts[k + 1:]]
    trials.write_text("\n".join(lines) + "\n")
    assert ivector_eer.main(["--trials", str(trials), str(tmp / "eer"), str(data), str(out)]) == 0
    line = (tmp / "eer" / "eer").read_text()
    assert "12 utterances of 3 speakers, 18 target and 48 non-target trials from" in line
    # the same trials as all pairs: the same EER
    assert ivector_eer.main([str(tmp / "eer_all"), str(data), str(out)]) == 0
    assert line.split("(")[0] == (tmp / "eer_all" / "eer").read_text().split("(")[0]
    # a trial naming an utterance without an embedding: a clear error, nothing written
    trials.write_text("1 s0_u0 s0_u1\n0 s0_u0 nobody\n")
    with caplog.at_level(logging.ERROR):
        assert ivector_eer.main(["--trials", str(trials), str(tmp / "eer_bad"), str(data), str(out)]) == 1
    assert "nobody (line 2)" in caplog.text and not (tmp / "eer_bad").exists()
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert extract_embeddings.main(["--task", "lang", str(exp), str(data), str(tmp / "x")]) == 1
    assert "no head 'lang'" in caplog.text and not (tmp / "x").exists()
