"""The wav2vec2 encoder (seed 003): the same outputs as transformers' own
forward, padding that changes nothing, checkpoints saved and reloaded, and
clear errors for broken checkpoint directories."""

import json

import pytest
import torch

from mtlasr.nnet.wav2vec2 import Wav2Vec2Encoder, check_checkpoint_dir, load_wav2vec2, normalise_waveform

# a few hundred thousand parameters, the standard conv strides (320 samples per token)
TINY = {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 64,
        "conv_dim": [16] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
        "hidden_dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, "feat_proj_dropout": 0.0,
        "layerdrop": 0.0, "mask_time_prob": 0.0}


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_encoder(seed=0, **kw):
    torch.manual_seed(seed)
    return Wav2Vec2Encoder(load_wav2vec2(w2v2_config={**TINY, **kw.pop("config", {})}), **kw).eval()


def frames(t, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t, 160, generator=g) * 0.1


def test_matches_transformers_forward():
    """Our layer-by-layer forward equals Wav2Vec2Model's on one utterance."""
    for stable in (False, True):
        enc = tiny_encoder(config={"do_stable_layer_norm": stable,
                                   "feat_extract_norm": "layer" if stable else "group"})
        x = frames(50, 1)
        outs = enc(x[None])
        assert len(outs) == 4 and [o.shape for o in outs] == [(1, 24, 32)] * 4
        assert int(enc.output_lengths(torch.tensor([50]), 4)[0]) == 24  # 8000 samples -> 24 tokens
        wav = normalise_waveform(x.reshape(1, -1), torch.tensor([8000]))
        ref = enc.layers[0].feature_extractor  # the same modules as the wrapped model's
        with torch.no_grad():
            model = load_wav2vec2(w2v2_config={**TINY, "do_stable_layer_norm": stable,
                                               "feat_extract_norm": "layer" if stable else "group"})
            model.load_state_dict(_state_of(enc, model))
            model.eval()
            assert model.feature_extractor.conv_layers[0].conv.weight.equal(ref.conv_layers[0].conv.weight)
            want = model(wav).last_hidden_state
        assert torch.allclose(outs[-1], want, atol=1e-5), (outs[-1] - want).abs().max()


def _state_of(enc, model):
    """The wrapped model's state dict rebuilt from the encoder's modules."""
    sd = {}
    for k, v in enc.layers[0].state_dict().items():
        sd[k] = v
    for i, layer in enumerate(enc.layers[1:]):
        for k, v in layer.state_dict().items():
            sd[f"encoder.layers.{i}.{k}"] = v
    for k, v in enc.pos_conv_embed.state_dict().items():
        sd[f"encoder.pos_conv_embed.{k}"] = v
    for k, v in enc.layer_norm.state_dict().items():
        sd[f"encoder.layer_norm.{k}"] = v
    if "masked_spec_embed" in model.state_dict():
        sd["masked_spec_embed"] = model.state_dict()["masked_spec_embed"]
    return sd


def test_padding_changes_no_valid_output_and_cls_prefix():
    for cls in (False, True):
        enc = tiny_encoder(cls_token=cls)
        a, b = frames(50, 1), frames(31, 2)
        x = torch.zeros(2, 50, 160)
        x[0], x[1, :31] = a, b
        lens = torch.tensor([50, 31])
        outs, prefix = enc(x, lengths=lens, return_prefix=True)
        n = enc.output_lengths(lens, 4)
        assert n.tolist() == [24, 15]
        alone_b, pre_b = enc(b[None], return_prefix=True)
        for layer in range(4):
            assert outs[layer].shape[1] == 24
            assert torch.allclose(outs[layer][1, :15], alone_b[layer][0], atol=1e-5)
            assert outs[layer][1, 15:].abs().max() == 0
        assert prefix[0] is None
        if cls:
            assert all(p.shape == (2, 32) for p in prefix[1:])
            assert torch.allclose(prefix[3][1], pre_b[3][0], atol=1e-5)
        else:
            assert prefix == [None] * 4
        assert len(enc(x, upto=2, lengths=lens)) == 2


def test_frozen_feature_encoder_and_errors():
    enc = tiny_encoder()
    assert not any(p.requires_grad for p in enc.layers[0].feature_extractor.parameters())
    assert all(p.requires_grad for p in enc.layers[0].feature_projection.parameters())
    assert all(p.requires_grad for p in tiny_encoder(freeze_feature_encoder=False).parameters())
    with pytest.raises(ValueError, match="161 samples, expected 160"):
        enc(torch.zeros(1, 10, 161))
    with pytest.raises(ValueError, match="receptive field"):
        enc(torch.zeros(1, 2, 160))
    with pytest.raises(ValueError, match="unknown Wav2Vec2Config field.*hiden_size"):
        load_wav2vec2(w2v2_config={"hiden_size": 8})


def test_checkpoint_saved_and_reloaded_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = load_wav2vec2(w2v2_config=TINY)
    model.save_pretrained(tmp_path / "ckpt")
    info = check_checkpoint_dir(tmp_path / "ckpt")
    assert info["config"]["hidden_size"] == 32 and info["weight_bytes"] > 100_000
    enc_a = Wav2Vec2Encoder(model).eval()
    enc_b = Wav2Vec2Encoder(load_wav2vec2(str(tmp_path / "ckpt"))).eval()
    x = frames(40, 3)[None]
    for oa, ob in zip(enc_a(x), enc_b(x)):
        assert torch.equal(oa, ob)
    # dropout-like fields may be overridden, the architecture may not
    assert load_wav2vec2(str(tmp_path / "ckpt"), {"layerdrop": 0.1}).config.layerdrop == 0.1
    with pytest.raises(ValueError, match="hidden_size would change the architecture"):
        load_wav2vec2(str(tmp_path / "ckpt"), {"hidden_size": 64})


def test_broken_checkpoint_directories(tmp_path):
    torch.manual_seed(0)
    load_wav2vec2(w2v2_config=TINY).save_pretrained(tmp_path / "ok")
    with pytest.raises(FileNotFoundError, match="no such checkpoint directory"):
        check_checkpoint_dir(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json: missing"):
        load_wav2vec2(str(tmp_path / "empty"))
    cfg = json.loads((tmp_path / "ok" / "config.json").read_text())
    bad = tmp_path / "bert"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({**cfg, "model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type is 'bert'"):
        check_checkpoint_dir(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON file"):
        check_checkpoint_dir(bad)
    noweights = tmp_path / "noweights"
    noweights.mkdir()
    (noweights / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FileNotFoundError, match="no weights"):
        check_checkpoint_dir(noweights)
    # a config that does not describe the saved weights
    mism = tmp_path / "mismatch"
    mism.mkdir()
    for f in (tmp_path / "ok").iterdir():
        (mism / f.name).write_bytes(f.read_bytes())
    (mism / "config.json").write_text(json.dumps({**cfg, "hidden_size": 48, "intermediate_size": 96}))
    with pytest.raises(ValueError, match="mismatch"):
        load_wav2vec2(str(mism))
    (mism / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 4}))
    with pytest.raises(ValueError, match="missing_keys"):
        load_wav2vec2(str(mism))


def test_config_builds_the_encoder_with_heads_and_a_portable_checkpoint(tmp_path):
    """model.encoder wav2vec2 in the trainer's config: a CTC main head, a
    speaker head with first+cls pooling and AAM-softmax, and a checkpoint
    config that rebuilds the network without the directory it came from."""
    from mtlasr.nnet.config import load_config
    from mtlasr.nnet.build import build_model, portable_config

    torch.manual_seed(0)
    load_wav2vec2(w2v2_config=TINY).save_pretrained(tmp_path / "ckpt")
    sets = ["model.encoder=wav2vec2", "model.criterion=ctc", f"model.w2v2_dir={tmp_path}/ckpt",
            "model.cls_token=true", "features.cmvn=none",
            "tasks.spk.targets=utt_label", "tasks.spk.source={data}/utt2spk", "tasks.spk.loss=aam",
            "tasks.spk.pooling=first", "tasks.spk.schedule=dynamic"]
    cfg = load_config(None, sets)
    model = build_model(cfg, 160, 5, {"spk": 3}).eval()
    assert model.forks == {"main": 4, "spk": 4}
    x = torch.stack([frames(50, 1), frames(50, 2)])
    lens = torch.tensor([50, 31])
    out = model(x, lengths=lens)
    assert out["main"].shape == (2, 24, 5) and out["spk"].shape == (2, 3)
    # the speaker head reads the CLS output; the CTC head the frames only
    outs, prefix = model.trunk(x, lengths=lens, return_prefix=True)
    head = model.heads["spk"]
    assert torch.allclose(out["spk"], head.out(head.embed(prefix[-1][:, None])), atol=1e-6)
    assert torch.allclose(out["main"], model.heads["main"](outs[-1]), atol=1e-6)

    port = portable_config(cfg, model)
    assert port["model"]["w2v2_dir"] == "" and port["model"]["w2v2_config"]["hidden_size"] == 32
    assert cfg["model"]["w2v2_dir"]  # the training config itself is unchanged
    (tmp_path / "ckpt" / "config.json").unlink()
    again = build_model(port, 160, 5, {"spk": 3}).eval()
    again.load_state_dict(model.state_dict())
    for k, v in again(x, lengths=lens).items():
        assert torch.equal(v, out[k])


@pytest.mark.parametrize("sets,msg", [
    (["model.encoder=wav2vec2", "model.criterion=ce", "features.cmvn=none"], "use model.criterion ctc"),
    (["model.encoder=wav2vec2", "model.criterion=ctc"], "features.cmvn none"),
    (["model.encoder=wav2vec2", "model.criterion=ctc", "features.cmvn=none", "model.cls_token=1"],
     "cls_token: must be true or false"),
    (["model.criterion=ctc", "tasks.spk.targets=utt_label", "tasks.spk.source=u", "tasks.spk.pooling=first",
      "tasks.spk.loss=ce"],
     "first.*needs the wav2vec2 encoder with model.cls_token true"),
    (["features.cmvn=global"], "features.cmvn: 'global'"),
])
def test_bad_wav2vec2_configs_are_named(sets, msg):
    from mtlasr.nnet.config import load_config

    with pytest.raises(ValueError, match=msg):
        load_config(None, sets)


def test_raw_frames_features(tmp_path):
    import numpy as np

    from mtlasr.bin.compute_mfcc import raw_frames

    x = np.arange(1000, dtype=np.float32)
    f = raw_frames(x, 16000, 16000.0, 160)
    assert f.shape == (6, 160) and f.dtype == np.float32 and np.array_equal(f.reshape(-1), x[:960])
    with pytest.raises(ValueError, match="sample rate 8000 Hz, expected 16000 Hz"):
        raw_frames(x, 8000, 16000.0, 160)


def test_branched_encoder_shares_exactly_the_layers_it_should():
    """tasks.spk.branch 2: layers 1-2 shared, the speaker head reads its own
    copies of layers 3-4 (seed 003 sec. 3.1.2). At the start the copies equal
    the shared layers; the speaker loss reaches the shared layers and its
    copies only, the CTC loss the shared layers and the main path only."""
    from mtlasr.nnet.config import load_config
    from mtlasr.nnet.build import build_model

    torch.manual_seed(0)
    sets = ["model.encoder=wav2vec2", "model.criterion=ctc", "features.cmvn=none",
            "model.freeze_feature_encoder=false", "tasks.spk.targets=utt_label", "tasks.spk.source=u",
            "tasks.spk.loss=aam", "tasks.spk.pooling=mean", "tasks.spk.branch=2"]
    cfg = load_config(None, sets + ["model.w2v2_config=" + json.dumps(TINY)])
    model = build_model(cfg, 160, 5, {"spk": 3}).eval()
    assert model.branch_at == {"spk": 2} and len(model.branches["spk"]["layers"]) == 2
    x = torch.stack([frames(50, 1), frames(50, 2)])
    lens = torch.tensor([50, 31])
    out = model(x, lengths=lens)
    shared = model.trunk(x, lengths=lens)
    head = model.heads["spk"]
    from mtlasr.nnet.encoders import length_mask
    m = length_mask(model.output_lengths(lens, 4), shared[-1].shape[1])
    assert torch.allclose(out["spk"], head(shared[-1], m), atol=1e-5)  # identical copies at the start

    def grads(loss):
        model.zero_grad(set_to_none=True)
        loss.backward(retain_graph=True)
        def moved(mod):
            return any(p.grad is not None and p.grad.abs().sum() > 0 for p in mod.parameters())
        return {"proj": moved(model.trunk.layers[0].feature_projection), "l2": moved(model.trunk.layers[1]),
                "l3": moved(model.trunk.layers[2]), "l4": moved(model.trunk.layers[3]),
                "branch": moved(model.branches["spk"]), "main": moved(model.heads["main"]),
                "spk": moved(model.heads["spk"])}

    model.train()
    out = model(x, lengths=lens)
    assert grads(out["spk"].sum()) == {"proj": True, "l2": True, "l3": False, "l4": False, "branch": True,
                                       "main": False, "spk": True}
    assert grads(out["main"].sum()) == {"proj": True, "l2": True, "l3": True, "l4": True, "branch": False,
                                        "main": True, "spk": False}
    with pytest.raises(ValueError, match="must be in 2..3"):
        build_model(load_config(None, [s.replace("branch=2", "branch=1") for s in sets]
                                + ["model.w2v2_config=" + json.dumps(TINY)]), 160, 5, {"spk": 3})
    with pytest.raises(ValueError, match="only wav2vec2"):
        build_model(load_config(None, ["model.criterion=ctc", "model.encoder=glu_conv", *sets[4:]]), 5, 5,
                    {"spk": 3})


def test_ctc_based_pooling_and_split_embedding():
    """Seed 003 sec. 3.1.3-3.1.4: a speaker head pooling over the frames
    whose CTC output is blank (or not), and one reading the first d_k
    dimensions of the last layer while the CTC head reads the others."""
    from mtlasr.nnet.config import load_config
    from mtlasr.nnet.encoders import length_mask
    from mtlasr.nnet.model import ctc_pool_mask
    from mtlasr.nnet.build import build_model

    logits = torch.tensor([[[5.0, 0, 0], [0, 5, 0], [5, 0, 0], [0, 0, 5]],
                           [[5.0, 0, 0], [5, 0, 0], [0, 5, 0], [0, 0, 0]]])
    valid = torch.tensor([[True, True, True, True], [True, True, False, False]])
    assert ctc_pool_mask(logits, valid, "ctc_blank").tolist() == [[True, False, True, False],
                                                                   [True, True, False, False]]
    # the second row has no valid non-blank frame: it keeps its valid frames
    assert ctc_pool_mask(logits, valid, "ctc_nonblank").tolist() == [[False, True, False, True],
                                                                      [True, True, False, False]]
    base = ["model.encoder=wav2vec2", "model.criterion=ctc", "features.cmvn=none", "tasks.spk.targets=utt_label",
            "tasks.spk.source=u", "tasks.spk.loss=aam", "model.w2v2_config=" + json.dumps(TINY)]
    x = torch.stack([frames(50, 1), frames(50, 2)])
    lens = torch.tensor([50, 31])
    torch.manual_seed(0)
    model = build_model(load_config(None, base + ["tasks.spk.pooling=ctc_nonblank"]), 160, 5, {"spk": 3}).eval()
    out = model(x, lengths=lens, embed=True)
    h = model.trunk(x, lengths=lens)[-1]
    m = ctc_pool_mask(out["main"], length_mask(model.output_lengths(lens), h.shape[1]), "ctc_nonblank")
    want = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True)
    assert torch.allclose(out["spk"], want, atol=1e-5)
    assert model(x, heads=["spk"], lengths=lens).keys() == {"spk"}

    torch.manual_seed(0)
    model = build_model(load_config(None, base + ["tasks.spk.pooling=mean", "tasks.spk.split=12"]), 160, 5,
                        {"spk": 3}).eval()
    assert model.heads["main"].in_features == 20 and model.heads["spk"].embed_dim == 12
    out = model(x, lengths=lens, embed=True)
    h = model.trunk(x, lengths=lens)[-1]
    assert torch.allclose(out["main"], model.heads["main"](h[..., 12:]), atol=1e-6)
    m = length_mask(model.output_lengths(lens), h.shape[1])
    assert torch.allclose(out["spk"], (h[..., :12] * m[..., None]).sum(1) / m.sum(1, keepdim=True), atol=1e-5)
    # decoding builds the model without the speaker head: the CTC head still reads its part
    from mtlasr.nnet.build import load_for_inference
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        cfg = load_config(None, base + ["tasks.spk.pooling=mean", "tasks.spk.split=12"])
        torch.save({"config": cfg, "input_dim": 160, "num_pdfs": 5, "task_dims": {"spk": 3},
                    "model": model.state_dict()}, f"{d}/final.pt")
        dec, _ = load_for_inference(f"{d}/final.pt")
        assert list(dec.heads) == ["main"]
        assert torch.allclose(dec(x, lengths=lens)["main"], out["main"], atol=1e-6)
    with pytest.raises(ValueError, match="must leave the main head"):
        build_model(load_config(None, base + ["tasks.spk.pooling=mean", "tasks.spk.split=32"]), 160, 5, {"spk": 3})
    with pytest.raises(ValueError, match="a split head reads the last shared layer"):
        build_model(load_config(None, base + ["tasks.spk.pooling=mean", "tasks.spk.split=8", "tasks.spk.fork=2"]),
                    160, 5, {"spk": 3})
    with pytest.raises(ValueError, match="pools by the CTC outputs"):
        load_config(None, ["tasks.spk.targets=utt_label", "tasks.spk.source=u", "tasks.spk.pooling=ctc_blank",
                           "tasks.spk.loss=ce"])


def test_prepare_a_fine_tuned_checkpoint_dir(tmp_path, caplog):
    """prepare_wav2vec2: a Wav2Vec2ForCTC directory becomes an encoder
    directory with the same encoder outputs; a broken one is refused."""
    import logging

    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    from mtlasr.bin import prepare_wav2vec2

    torch.manual_seed(0)
    ctc = Wav2Vec2ForCTC(Wav2Vec2Config(**TINY, vocab_size=7)).eval()
    ctc.save_pretrained(tmp_path / "ctc")
    assert prepare_wav2vec2.main([str(tmp_path / "ctc"), str(tmp_path / "enc")]) == 0
    assert "parameters" in (tmp_path / "enc" / "summary.txt").read_text()
    enc = load_wav2vec2(str(tmp_path / "enc")).eval()
    wav = torch.randn(1, 8000)
    with torch.no_grad():
        assert torch.equal(enc(wav).last_hidden_state, ctc.wav2vec2(wav).last_hidden_state)
    (tmp_path / "ctc" / "config.json").write_text(json.dumps({"model_type": "hubert"}))
    with caplog.at_level(logging.ERROR):
        assert prepare_wav2vec2.main([str(tmp_path / "ctc"), str(tmp_path / "enc2")]) == 1
    assert "model_type is 'hubert'" in caplog.text and not (tmp_path / "enc2").exists()
