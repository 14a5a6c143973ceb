"""The generator base (synthaug/base.py): class labels in fit, labels asked for afterwards, and
scores of values a discrete model cannot produce. Checked through a tiny VAE and Flow."""
import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris

pytest.importorskip("tensorflow")

from synthaug import VAE, Flow  # noqa: E402

IRIS_X, IRIS_Y = load_iris(return_X_y=True)
TINY = dict(latent_dim=2, hidden_units=(8,), epochs=2, validation_fraction=0.0, random_state=0)


@pytest.fixture(scope="module")
def spaced_labels():
    """A VAE whose classes are the non-contiguous integers 3, 7 and 100."""
    return VAE(**TINY).fit(IRIS_X, np.array([3, 7, 100])[IRIS_Y])


@pytest.fixture(scope="module")
def unconditional():
    return VAE(**TINY).fit(IRIS_X)


@pytest.mark.parametrize("label", [7.6, "7", 99.9, -1])
def test_a_single_label_is_checked_before_any_conversion(spaced_labels, label):
    with pytest.raises(ValueError, match=rf"labels not seen in fit: \[{label!r}\]"):
        spaced_labels.generate(3, y=label)
    with pytest.raises(ValueError, match="labels not seen in fit"):
        spaced_labels.reconstruct(IRIS_X[:2], label)


def test_equal_labels_of_another_numeric_type_are_the_same_class(spaced_labels):
    assert spaced_labels.generate(3, y=7.0)[1].tolist() == [7, 7, 7]
    assert spaced_labels.generate(3, y=[100, 3, 7])[1].tolist() == [100, 3, 7]
    np.testing.assert_array_equal(spaced_labels.score_samples(IRIS_X[:3], 7.0),
                                  spaced_labels.score_samples(IRIS_X[:3], [7, 7, 7]))


def test_string_labels_are_not_truncated_to_the_classes_width():
    model = VAE(**TINY).fit(IRIS_X, np.array(["a", "b", "c"])[IRIS_Y])
    assert model.generate(2, y="b")[1].tolist() == ["b", "b"]
    with pytest.raises(ValueError, match=r"labels not seen in fit: \['bb'\]"):
        model.generate(2, y="bb")


def test_fit_refuses_targets_that_are_not_class_labels():
    with pytest.raises(ValueError, match="y must hold class labels.*continuous"):
        VAE(**TINY).fit(IRIS_X, np.random.RandomState(0).normal(size=len(IRIS_X)))
    with pytest.raises(ValueError, match="y contains NaN in 50 labels"):
        VAE(**TINY).fit(IRIS_X, np.where(IRIS_Y == 0, np.nan, IRIS_Y))
    with pytest.raises(TypeError, match=r"y mixes label types \['int', 'str'\]"):
        VAE(**TINY).fit(IRIS_X, np.array([1 if k == 0 else "b" for k in IRIS_Y], dtype=object))


def test_an_unconditional_model_refuses_labels_everywhere(unconditional):
    for call in (lambda: unconditional.generate(2, y=1),
                 lambda: unconditional.score_samples(IRIS_X[:3], [5, 6, 7]),
                 lambda: unconditional.reconstruct(IRIS_X[:2], ["j", "j"]),
                 lambda: unconditional.inverse_transform(np.zeros((2, 2)), 1)):
        with pytest.raises(ValueError, match="fitted without labels; pass y=None"):
            call()
    assert unconditional.score_samples(IRIS_X[:3]).shape == (3,)


@pytest.mark.parametrize("family", [VAE, Flow])
def test_values_off_the_integer_levels_have_probability_zero(family):
    digits = load_digits()
    params = TINY if family is VAE else dict(epochs=2, validation_fraction=0.0, random_state=0)
    model = family(**params).fit(digits.data[:200], digits.target[:200])
    X, y = digits.data[:4], digits.target[:4]
    clean = model.score_samples(X, y)
    assert np.all(np.isfinite(clean))
    out_of_range = np.where(X == X.max(axis=1, keepdims=True), 100.0, X)  # 100 on a 0..16 model
    between = X.copy()
    between[[1, 3], 5] += 0.4  # not an integer level
    np.testing.assert_array_equal(model.score_samples(out_of_range, y), -np.inf)
    np.testing.assert_array_equal(model.score_samples(between, y), [clean[0], -np.inf, clean[2], -np.inf])


def test_a_model_file_of_another_format_version_says_which(tmp_path, unconditional):
    import json
    import zipfile

    from synthaug import load
    from synthaug.io import archive_bytes

    with zipfile.ZipFile(unconditional.save(tmp_path / "m.synthaug")) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(members["synthaug.json"])
    members["synthaug.json"] = json.dumps({**meta, "format_version": 99})
    (tmp_path / "new.synthaug").write_bytes(archive_bytes(members))
    with pytest.raises(ValueError, match="new.synthaug is a synthaug model file of format version 99; this synthaug"):
        load(tmp_path / "new.synthaug")


def test_a_dataset_with_a_regression_target_is_refused_like_an_array():
    import tensorflow as tf

    target = np.random.RandomState(0).normal(size=len(IRIS_X))
    dataset = tf.data.Dataset.from_tensor_slices((IRIS_X, target)).batch(50)
    with pytest.raises(ValueError, match="y must hold class labels.*continuous"):
        VAE(**TINY).fit(dataset)


def test_numpy_and_random_state_parameters_are_saved(tmp_path):
    # e.g. the best estimator of a GridSearchCV over np.arange(...): its params are NumPy numbers
    import synthaug

    model = VAE(latent_dim=np.int64(2), hidden_units=(np.int64(8),), epochs=1, learning_rate=np.float32(1e-3),
                validation_fraction=0.0, random_state=np.random.RandomState(0)).fit(IRIS_X, IRIS_Y)
    loaded = synthaug.load(model.save(tmp_path / "m.synthaug"))
    params = loaded.get_params()
    assert params["latent_dim"] == 2 and tuple(params["hidden_units"]) == (8,) and params["random_state"] is None
    np.testing.assert_array_equal(loaded.generate(3, random_state=0)[0], model.generate(3, random_state=0)[0])


def test_str_and_numpy_str_labels_are_one_type():
    y = np.array(["a"] * 75 + [np.str_("b")] * 75, dtype=object)
    assert VAE(**TINY).fit(IRIS_X, y).classes_.tolist() == ["a", "b"]


@pytest.mark.parametrize("family", [VAE, Flow])
def test_verbose_takes_bools_and_names_what_it_takes(family):
    family(**{**TINY, "verbose": False} if family is VAE else dict(epochs=1, verbose=False)).fit(IRIS_X)
    with pytest.raises(ValueError, match="verbose must be a bool or a non-negative integer; got -1"):
        family(verbose=-1).fit(IRIS_X)


def test_a_file_with_damaged_compressed_data_is_named(tmp_path, unconditional):
    import synthaug

    data = bytearray(unconditional.to_bytes())
    data[700:764] = bytes(64)  # inside the deflated model.keras
    (tmp_path / "damaged.synthaug").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged.synthaug"):
        synthaug.load(tmp_path / "damaged.synthaug")
