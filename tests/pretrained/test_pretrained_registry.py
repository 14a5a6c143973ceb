"""synthaug.pretrained: the shipped generators load, generate, and reproduce their cards' metrics."""
import hashlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import synthaug.pretrained as pretrained
from synthaug.pretrained import _heldout

EXPECTED = {"digits-vae", "digits-gan", "digits-flow", "lfw-faces", "ct-patches"}  # digits-pixelcnn: if trained
# |recomputed - card| allowed per metric. Same file, same seeds: on the machine that wrote the
# cards the numbers agree to float rounding; the slack covers other CPUs' float arithmetic.
TOLERANCE = {"mmd_test": (0.10, 2e-3), "mmd_test_real_floor": (0.0, 1e-6), "frechet_test": (0.05, 0.05),
             "frechet_test_real_floor": (0.0, 1e-6), "tstr_accuracy": (0.0, 0.02), "trtr_accuracy": (0.0, 1e-9),
             "test_bits_per_dim": (0.0, 0.005), "n_test": (0.0, 0.0)}
EXACT_LIKELIHOOD = {"digits-flow", "digits-pixelcnn"}  # deterministic score_samples; the VAE's IWAE bound is not


@pytest.fixture(scope="module")
def models():
    return {name: pretrained.load(name) for name in pretrained.names()}


def test_list_names_cards_without_tensorflow():
    code = ("import sys, synthaug.pretrained as p; m = p.list(); c = p.card('digits-vae');\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'\n"
            "print(sorted(m))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert EXPECTED <= set(eval(out))
    listed = pretrained.list()
    assert set(listed) == set(pretrained.names()) and all(isinstance(v, str) and v for v in listed.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card_is_complete_and_files_are_small(name):
    card = pretrained.card(name)
    assert card["name"] == name and card["file"] == f"{name}.synthaug"
    data = (pretrained._files() / card["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == card["sha256"] and len(data) == card["size_bytes"] <= 5 * 1024 * 1024
    for key in ("license", "source", "split", "n_train", "n_test"):
        assert card["data"][key]
    assert card["training"]["command"].startswith("python scripts/train_pretrained.py")
    assert {"synthaug", "tensorflow", "keras"} <= set(card["training"]["versions"])
    assert card["metrics"]["heldout"]["mmd_test"] is not None and card["intended_use"] and card["limits"]
    assert f"# {name}" in pretrained.card_text(name)
    if name == "ct-patches":
        assert "NOT FOR CLINICAL USE" in " ".join(card["limits"])


def test_all_files_together_stay_under_30_mb():
    total = sum((pretrained._files() / f"{n}.synthaug").stat().st_size for n in pretrained.names())
    assert total <= 30 * 1024 * 1024


def test_every_model_generates_its_shape_dtype_and_labels(models):
    assert EXPECTED <= set(models)
    for name, model in models.items():
        card = pretrained.card(name)
        out = model.generate(12, random_state=0)
        X, y = out if isinstance(out, tuple) else (out, None)
        assert X.shape == (12, *card["sample_shape"]) and X.dtype == np.dtype(card["dtype"]), name
        lo, hi = card["value_range"]
        assert lo <= X.min() and X.max() <= hi, name
        if card["conditional"]:
            assert y is not None and set(y.tolist()) <= set(card["classes"]), name
        else:
            assert y is None, name
        again = model.generate(12, random_state=0)
        np.testing.assert_array_equal(again[0] if isinstance(again, tuple) else again, X)
    X7, y7 = models["digits-vae"].generate(5, y=7, random_state=1)
    assert (y7 == 7).all() and set(np.unique(X7)) <= set(range(17))
    faces, labels = models["lfw-faces"].generate(4, y="face", random_state=0)
    assert faces.dtype == np.uint8 and (labels == "face").all()


def _close(name, key, got, want):
    rel, abs_ = TOLERANCE[key]
    assert abs(got - want) <= rel * abs(want) + abs_, f"{name}: {key} recomputed {got}, card {want}"


@pytest.mark.parametrize("name", sorted(EXPECTED) + ["digits-pixelcnn"])
def test_card_metrics_are_reproduced(models, name):
    if name not in models:
        pytest.skip(f"{name} is not shipped in this build")
    card = pretrained.card(name)["metrics"]["heldout"]
    got = _heldout.heldout_metrics(models[name], _heldout.load_split(name), seed=0,
                                   likelihood=name in EXACT_LIKELIHOOD)
    assert set(got) <= set(card)
    for key, value in got.items():
        _close(name, key, value, card[key])
    if name in EXACT_LIKELIHOOD:
        assert "test_bits_per_dim" in got


def test_digits_mmd_recomputed_independently(models):
    # The card's number from first principles: the digits protocol, standardised pixels, synthaug.metrics.mmd.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from synthaug.metrics import mmd

    d = load_digits()
    X_train, X_test, _, _ = train_test_split(d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)
    X, _ = models["digits-gan"].generate(len(X_test), random_state=0, watermark=False)
    mu, sd = X_train.mean(), X_train.std()
    value = mmd(((X_test - mu) / sd).reshape(len(X_test), -1), ((X - mu) / sd).reshape(len(X), -1))
    _close("digits-gan", "mmd_test", value, pretrained.card("digits-gan")["metrics"]["heldout"]["mmd_test"])


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"no pretrained generator named 'digits-vea'; available: .*digits-vae"):
        pretrained.load("digits-vea")
    with pytest.raises(ValueError, match="available"):
        pretrained.card("nope")
    with pytest.raises(TypeError, match="name must be a str"):
        pretrained.load(3)


def test_tampered_file_is_refused(tmp_path, monkeypatch):
    for name in ("lfw-faces",):
        for ext in (".synthaug", ".json", ".md"):
            shutil.copyfile(pretrained._files() / f"{name}{ext}", tmp_path / f"{name}{ext}")
    data = bytearray((tmp_path / "lfw-faces.synthaug").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "lfw-faces.synthaug").write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "_files", lambda: tmp_path)
    assert pretrained.names() == ["lfw-faces"]
    with pytest.raises(ValueError, match="sha256 .* but its card says .*damaged or was altered"):
        pretrained.load("lfw-faces")
