"""Self-supervised pre-training of a small wav2vec2 (mtlasr.bin.pretrain_wav2vec2):
a checkpoint the encoder loads, identical for identical runs, and clear errors."""

import logging

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from mtlasr.bin import pretrain_wav2vec2
from mtlasr.nnet.wav2vec2 import load_wav2vec2

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "conv_dim": [16] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
        "codevector_dim": 16, "proj_codevector_dim": 16, "num_codevectors_per_group": 16, "num_negatives": 5,
        "mask_time_prob": 0.3, "mask_time_length": 3}


def raw_data(d, width=160, n=6):
    rng = np.random.default_rng(0)
    d.mkdir()
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        for i in range(n):
            t = np.arange(60 + 7 * i) / 100.0
            x = np.sin(2 * np.pi * (200 + 50 * i) * np.repeat(t, width)[: (60 + 7 * i) * width])
            w(f"u{i}", (1000 * x + 50 * rng.standard_normal(len(x))).astype(np.float32).reshape(-1, width))
    (d / "utt2spk").write_text("".join(f"u{i} s{i % 2}\n" for i in range(n)))
    return d


def test_pretraining_writes_a_loadable_deterministic_checkpoint(tmp_path, caplog):
    torch.set_num_threads(1)
    data = raw_data(tmp_path / "data")
    conf = tmp_path / "w2v2.yaml"
    conf.write_text(yaml.safe_dump(TINY))
    args = ["--config", str(conf), "--epochs", "2", "--batch-size", "3", "--max-seconds", "0.5"]
    assert pretrain_wav2vec2.main(args + [str(data), str(tmp_path / "a")]) == 0
    assert pretrain_wav2vec2.main(args + [str(data), str(tmp_path / "b")]) == 0
    a = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "b" / "model.safetensors").read_bytes()
    hist = yaml.safe_load((tmp_path / "a" / "pretrain_history.json").read_text())
    assert len(hist) == 2 and all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in hist)
    assert (tmp_path / "a" / "pretrain_curve.png").stat().st_size > 1000
    model = load_wav2vec2(str(tmp_path / "a"))
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 2
    # a rerun replaces the checkpoint only when complete; a bad config leaves it as it was
    conf.write_text(yaml.safe_dump({**TINY, "hiden_size": 8}))
    with caplog.at_level(logging.ERROR):
        assert pretrain_wav2vec2.main(args + [str(data), str(tmp_path / "a")]) == 1
    assert "unknown Wav2Vec2Config field(s) hiden_size" in caplog.text
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == a
    caplog.clear()
    conf.write_text(yaml.safe_dump(TINY))
    with caplog.at_level(logging.ERROR):
        assert pretrain_wav2vec2.main(args + [str(raw_data(tmp_path / "mfcc", width=13)), str(tmp_path / "c")]) == 1
    assert "13 values per frame, not 160" in caplog.text and not (tmp_path / "c").exists()


def test_schedules():
    assert pretrain_wav2vec2.lr_at(0, 100, 1.0) == pytest.approx(0.1)
    assert pretrain_wav2vec2.lr_at(9, 100, 1.0) == pytest.approx(1.0)
    assert pretrain_wav2vec2.lr_at(100, 100, 1.0) == 0.0
    assert pretrain_wav2vec2.gumbel_temperature(0, 11) == pytest.approx(2.0)
    assert pretrain_wav2vec2.gumbel_temperature(10, 11) == pytest.approx(0.5)
    assert pretrain_wav2vec2.make_batches([5, 1, 3, 2], 3) == [[1, 3, 2], [0]]
