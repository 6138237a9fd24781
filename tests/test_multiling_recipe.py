"""The multilingual espeak-ng CTC recipe (seed 004) end to end, tiny version."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, sh

RECIPE = ROOT / "egs" / "multiling_espeak" / "s5"
pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox") and Path("/usr/share/games/fortunes/de").is_dir()),
    reason="espeak-ng, sox or the fortunes packages are missing (utils/install_debian_packages.sh)")


def link_recipe(d: Path) -> None:
    """Make ``d`` a copy of the recipe made of links (no outputs)."""
    d.mkdir(parents=True, exist_ok=True)
    for p in RECIPE.iterdir():
        if p.name not in ("data", "exp", "mfcc"):
            (d / p.name).symlink_to(p)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    d = tmp_path_factory.mktemp("multiling")
    link_recipe(d)
    sh("./run.sh --config conf/tiny.conf", d, timeout=1500)
    return d


def test_tiny_recipe_ends_with_the_per_table(recipe):
    table = (recipe / "exp" / "results" / "table3.md").read_text()
    rows = [l for l in table.splitlines() if l.startswith("| ") and not l.startswith("| system")]
    assert len(rows) == 6, table
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        assert len(cells) == 5  # en de es it all
        for c in cells:
            per = float(re.match(r"[\d.]+", c).group())
            assert 0.0 <= per <= 200.0
    assert "Missing decodes" not in table
    # Fig. 4: one column per multilingual system, a Fisher ratio per label
    assert (recipe / "exp" / "results" / "fig4.png").stat().st_size > 5000
    rows = [l.split("\t") for l in (recipe / "exp" / "results" / "fig4.tsv").read_text().splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [(s_, lab) for s_ in ("multi", "multi_lr", "multi_sr", "multi_lr_sr")
                                            for lab in ("language", "speaker")]
    assert all(float(r[2]) >= 0 for r in rows)
    # the test sets use the LM weight chosen on dev
    for l in ("en", "de", "es", "it"):
        d = recipe / "exp" / "ctc_multi_lr_s0"
        assert (d / f"decode_dev_{l}" / "lmwt").read_text() == (d / f"decode_test_{l}" / "lmwt").read_text()


def test_language_subsets_and_units(recipe):
    units = [l.split()[0] for l in (recipe / "data" / "lang_ctc" / "units.txt").read_text().splitlines()]
    assert units[0] == "<blk>" and len(units) == len(set(units)) > 20
    for l in ("en", "de", "es", "it"):
        langs = {x.split()[1] for x in (recipe / "data" / f"test_{l}" / "utt2lang").read_text().splitlines()}
        assert langs == {l}
    # speaker-disjoint sets
    spk = {s: {x.split()[0] for x in (recipe / "data" / s / "spk2utt").read_text().splitlines()}
           for s in ("train", "dev", "test")}
    assert not (spk["train"] & spk["dev"]) and not (spk["train"] & spk["test"]) and not (spk["dev"] & spk["test"])


def test_mtl_systems_start_from_the_pretrained_model(recipe):
    import torch

    pre = torch.load(recipe / "exp" / "ctc_multi_s0" / "final.pt", weights_only=False)
    lr = torch.load(recipe / "exp" / "ctc_multi_lr_s0" / "final.pt", weights_only=False)
    assert lr["config"]["train"]["init"].endswith("ctc_multi_s0/final.pt")
    assert "lang" in lr["task_dims"] and "lang" not in pre["task_dims"]
    assert set(pre["model"]) < set(lr["model"])


def test_bad_language_tag_stops_before_anything(tmp_path):
    link_recipe(tmp_path)
    p = sh("./run.sh --config conf/tiny.conf --languages en,xx --stop-stage 0", tmp_path, check=False)
    assert p.returncode != 0
    assert "xx" in p.stderr and "en, de, es, it" in p.stderr
    assert not (tmp_path / "data" / "train").exists()


def test_unit_outside_the_inventory_names_the_utterance(tmp_path):
    from mtlasr.units import UnitTable, write_units

    write_units(["a", "b"], "phone", tmp_path)
    t = UnitTable(tmp_path)
    assert t.encode("a b a").tolist() == [1, 2, 1]
    with pytest.raises(ValueError, match="utterance u7: unit 'c' is not in"):
        t.encode("a c", "u7")
    write_units(["a", "b", "<space>"], "letter", tmp_path / "l")
    lt = UnitTable(tmp_path / "l")
    ids = lt.encode("ab ba")
    assert lt.decode(ids) == "ab ba"
    assert np.array_equal(ids, [1, 2, 3, 2, 1])


def test_fig4_fisher_ratio_and_pca():
    import importlib.util

    spec = importlib.util.spec_from_file_location("plot_fig4", RECIPE / "local" / "plot_fig4.py")
    fig4 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fig4)
    rng = np.random.default_rng(0)
    labels = ["a"] * 50 + ["b"] * 50
    noise = rng.standard_normal((100, 8))
    apart = noise + np.array([[4.0] + [0.0] * 7] * 50 + [[-4.0] + [0.0] * 7] * 50)
    # separated classes: between-class scatter 100 * 16 against about 100 * 8 within
    assert 1.5 < fig4.fisher_ratio(apart, labels) < 2.5
    assert fig4.fisher_ratio(noise, labels) < 0.1
    with pytest.raises(ValueError, match="two classes"):
        fig4.fisher_ratio(noise, ["a"] * 100)
    xy = fig4.pca2(apart)
    assert xy.shape == (100, 2)
    # the first component is the direction that separates the classes
    assert abs(np.corrcoef(xy[:, 0], apart[:, 0])[0, 1]) > 0.95


def test_english_lstm_hmm_beside_its_gmm(recipe):
    """local/run_hmm_english.sh: seed 000's pipeline (13-dim MFCC, monophone
    GMM, alignments, LSTM-HMM, HCLG decoding, PER) on one language's dirs;
    their 40-dim CTC features are left as they were. The tiny corpus has
    too little English for a GMM (4 utterances; dev phones unseen), so the
    pipeline runs on a made-up language 'tt': the whole tiny training set,
    with dev and test taken from it."""
    d = recipe / "data"
    sh("utils/copy_data_dir.sh data/train data/train_tt && "
       "head -n 6 data/train/utt2spk | cut -d' ' -f1 > data/tt_dev.list && "
       "tail -n 6 data/train/utt2spk | cut -d' ' -f1 > data/tt_test.list && "
       "utils/subset_data_dir.sh --utt-list data/tt_dev.list data/train data/dev_tt && "
       "utils/subset_data_dir.sh --utt-list data/tt_test.list data/train data/test_tt", recipe)
    before = (d / "train_tt" / "feats.scp").read_bytes()
    cmd = ("local/run_hmm_english.sh --lang tt --nnet-opts 'model.num_layers=1 model.cell_dim=16 "
           "model.proj_dim=8 train.max_epochs=1'")
    sh(cmd, recipe, timeout=900)
    res = (recipe / "exp" / "hmm_tt" / "results.md").read_text()
    for name in ("monophone GMM-HMM", "LSTM-HMM"):
        row = next(l for l in res.splitlines() if l.startswith(f"| {name} |"))
        dev, test = [float(c.split()[0]) for c in row.strip("|").split("|")[1:3]]
        assert 0 <= dev <= 150 and 0 <= test <= 150
    assert (d / "train_tt" / "feats.scp").read_bytes() == before
    assert (d / "hmm_tt" / "train" / "feats.scp").exists()
    p = sh(cmd, recipe, timeout=300)
    assert "training exp/" not in p.stderr  # a rerun redoes nothing
