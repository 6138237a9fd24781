"""The seed 003 recipe (egs/speech_speaker/s5) end to end on its espeak-ng
demo, tiny version: a wav2vec2 pre-trained here, six of its systems
(single-task speech and speaker, dynamic MTL, static MTL with eq. 5's
weight, first+cls pooling, the branched encoder), the WER + EER table and the plot, and a rerun that
redoes nothing."""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, sh

RECIPE = ROOT / "egs" / "speech_speaker" / "s5"
pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox") and Path("/usr/share/games/fortunes").is_dir()),
    reason="espeak-ng, sox or the fortunes are missing (utils/install_debian_packages.sh)")
SYSTEMS = "stl_speech stl_speaker dynamic static_eq5 first branch"
RUN = f"./run.sh --config conf/tiny.conf --systems '{SYSTEMS}'"


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    d = tmp_path_factory.mktemp("speech_speaker")
    for p in RECIPE.iterdir():
        if p.name not in ("data", "exp", "raw"):
            (d / p.name).symlink_to(p)
    p = sh(RUN, d, timeout=1500)
    (d / "first_run.err").write_text(p.stderr, encoding="utf-8")
    return d


def test_tiny_recipe_ends_with_the_wer_eer_table(recipe):
    table = (recipe / "exp" / "results" / "table.md").read_text(encoding="utf-8")
    rows = {l.split("|")[2].strip(): [c.strip() for c in l.strip("|").split("|")[2:]]
            for l in table.splitlines() if re.match(r"\| [123-] \|", l)}
    assert set(rows) == {"STL speech", "STL speaker", "MTL dynamic, mean pooling", "first+cls pooling",
                         "MTL static (lambda eq. 5; paper 0.88)", "branched encoder (half the layers shared)"}, table
    wer, cer, eer = rows["MTL dynamic, mean pooling"]
    assert re.fullmatch(r"[\d.]+ \(10\.63\)", wer) and re.fullmatch(r"[\d.]+", cer)
    assert re.fullmatch(r"[\d.]+ \(4\.23\)", eer) and 0 <= float(eer.split()[0]) <= 100
    assert rows["STL speech"][2] == "-" and rows["STL speaker"][0].startswith("-")
    assert "Missing" not in table
    # each variant against the single-task baselines of its seed
    assert re.search(r"\| MTL dynamic, mean pooling \| [+-][\d.]+ \([01]/1\) \| [+-][\d.]+ \([01]/1\) \| "
                     r"[+-][\d.]+ \([01]/1\) \|", table), table
    assert (recipe / "exp" / "results" / "wer_eer.png").stat().st_size > 5000


def test_data_pretraining_and_systems_are_wired(recipe):
    data, exp = recipe / "data", recipe / "exp"
    # speech voices, speaker-only voices and test voices are disjoint; the speaker data has no transcripts
    spk = {s: {l.split()[0] for l in (data / s / "spk2utt").read_text().splitlines()}
           for s in ("train", "train_spk", "test")}
    assert len(spk["train_spk"]) == 3 and not spk["train"] & spk["train_spk"]
    assert not (spk["train"] | spk["train_spk"]) & spk["test"]
    assert not (data / "train_spk" / "text").exists()
    # the waveform in 10 ms frames of 160 samples
    import kaldiio
    x = next(iter(kaldiio.load_scp(str(data / "test" / "feats.scp")).values()))
    assert x.shape[1] == 160
    # trials on the test voices, both kinds
    labels = {l.split()[0] for l in (data / "spk_test" / "trials").read_text().splitlines()}
    assert labels == {"0", "1"}
    # the pre-trained network every system starts from
    assert (exp / "w2v2_init" / "model.safetensors").is_file() and (exp / "w2v2_init" / ".pretrain.record").is_file()
    log = (exp / "dynamic_s0" / "log" / "train.log").read_text()
    n_spk = len((data / "train_spk" / "utt2spk").read_text().splitlines())
    assert re.search(rf"train: \d+ utterances \({n_spk} untranscribed\)", log)
    cfg = {s: (exp / f"{s}_s0" / "config.yaml").read_text() for s in SYSTEMS.split()}
    assert "batching: disjoint" in cfg["dynamic"] and "schedule: dynamic" in cfg["dynamic"]
    assert "main_weight: 0" in cfg["stl_speaker"] and "spk:" not in cfg["stl_speech"]
    assert "cls_token: true" in cfg["first"] and "pooling: first" in cfg["first"]
    assert "branch: 2" in cfg["branch"]
    # the CTC loss per letter; static_eq5's weight from the single-task losses of the same seed (eq. 5),
    # which are trained first
    assert all("ctc_norm: token" in c for c in cfg.values())
    l_s = json.loads((exp / "stl_speech_s0" / "history.json").read_text())[-1]["train_loss"]
    l_k = json.loads((exp / "stl_speaker_s0" / "history.json").read_text())[-1]["train_spk_loss"]
    lam = round(l_k / (l_s + l_k), 4)
    eq5 = yaml.safe_load(cfg["static_eq5"])
    assert eq5["train"]["main_weight"] == lam and eq5["tasks"]["spk"]["weight"] == round(1 - lam, 4)
    assert eq5["tasks"]["spk"]["schedule"] == "static"
    err = (recipe / "first_run.err").read_text()
    assert f"lambda = {lam:.4f}" in err
    assert err.index("training exp/stl_speaker_s0") < err.index("training exp/dynamic_s0")
    # speaker segments of 9 s (10 ms frames); the first updates train the heads only
    assert "crop_untranscribed: 900" in cfg["dynamic"] and "crop_untranscribed: 900" in cfg["stl_speaker"]
    assert "update 1: encoder frozen" in log and "update 3: training the whole network" in log
    assert "EER" in (exp / "branch_s0" / "eer_spk_test" / "eer").read_text()
    # two systems trained at once (tiny.conf: --system-jobs 2), each job's lines led by its name
    assert re.search(r"\[dynamic_s0\] .*training exp/dynamic_s0", (recipe / "first_run.err").read_text())


def test_rerun_redoes_nothing(recipe):
    p = sh(RUN, recipe, timeout=900)
    out = p.stdout + p.stderr
    assert "training exp/" not in out and "pre-training" not in out and "Stage 6: table" in out
    # the data dirs are not copied again (which would drop their features), no EER is recomputed
    assert "made from these inputs; skipping" in out and "MFCCs for" not in out
    assert "EER already computed from these inputs" in out and not re.search(r"eer_spk_test: EER \d", out)
