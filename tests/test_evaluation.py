import json
import math
import os
import subprocess
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

from synthaug.evaluation import ClassifierFeatures, EvaluationReport, KerasFeatures, evaluate


def test_import_stays_light():
    code = (
        "import sys, synthaug.evaluation, synthaug.report; "
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib.pyplot') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def digits():
    """Digits protocol split; the training part is split again into "train" and "synthetic"."""
    d = load_digits()
    X_rest, X_test, y_rest, y_test = train_test_split(
        d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)
    X_train, X_syn, y_train, y_syn = train_test_split(
        X_rest, y_rest, test_size=1 / 3, random_state=0, stratify=y_rest)
    return dict(X_train=X_train, y_train=y_train, X_syn=X_syn, y_syn=y_syn, X_test=X_test, y_test=y_test,
                X_rest=X_rest, y_rest=y_rest, images=d.images, target=d.target)


@pytest.fixture(scope="module")
def features(digits):
    return ClassifierFeatures(random_state=0).fit(digits["X_train"], digits["y_train"])


def _evaluate(digits, features, synthetic, **kw):
    return evaluate(synthetic, digits["X_train"], digits["y_train"], X_test=digits["X_test"],
                    y_test=digits["y_test"], features=FrozenEstimator(features), **kw)


@pytest.fixture(scope="module")
def good(digits, features):
    # Real digits the "generator" never saw: what a perfect generator would produce.
    return _evaluate(digits, features, (digits["X_syn"], digits["y_syn"]))


# -- features -----------------------------------------------------------------------------------
def test_classifier_features_separate_classes_and_are_deterministic(digits, features):
    from sklearn.neighbors import KNeighborsClassifier

    F_train = features.transform(digits["X_train"])
    F_test = features.transform(digits["X_test"])
    assert F_train.shape == (len(digits["X_train"]), 64) and F_train.dtype == np.float64
    assert features.trained_ and list(features.classes_) == list(range(10))
    knn = KNeighborsClassifier().fit(F_train, digits["y_train"])
    assert knn.score(F_test, digits["y_test"]) > 0.9
    # same units, same features: uint8 input of the same values maps identically
    np.testing.assert_allclose(features.transform(digits["X_test"].astype(np.uint8)), F_test, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"sample shape \(64,\)"):
        features.transform(digits["X_test"].reshape(-1, 64))


def test_classifier_features_without_labels_are_fixed_random_features(digits):
    X = digits["X_train"][:100]
    a = ClassifierFeatures(random_state=1).fit(X)
    b = ClassifierFeatures(random_state=1).fit(X)
    assert not a.trained_ and a.classes_ is None
    np.testing.assert_allclose(a.transform(X), b.transform(X))
    with pytest.raises(ValueError, match="needs images"):
        ClassifierFeatures().fit(X.reshape(100, -1))


def test_keras_features_take_a_named_layer(digits):
    import keras

    net = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(),
                            keras.layers.Dense(12, name="hidden"), keras.layers.Dense(10)])
    F = KerasFeatures(net, layer="hidden", batch_size=50).fit(digits["X_test"]).transform(digits["X_test"])
    assert F.shape == (len(digits["X_test"]), 12) and F.dtype == np.float64
    assert KerasFeatures(net).fit(None).transform(digits["X_test"][:3]).shape == (3, 10)
    with pytest.raises(ValueError, match="'nope'"):
        KerasFeatures(net, layer="nope").fit(digits["X_test"])
    report = evaluate((digits["X_syn"], digits["y_syn"]), digits["X_train"], digits["y_train"],
                      X_test=digits["X_test"], y_test=digits["y_test"], features=KerasFeatures(net, layer="hidden"))
    assert report.info["features"] == "KerasFeatures" and math.isfinite(report.metrics["frechet_distance"])


# -- the metrics tell good, collapsed and noisy samples apart ----------------------------------------
def test_real_unseen_samples_score_like_real_data(digits, good):
    m, ref = good.metrics, good.reference
    assert m["precision"] > 0.8 and m["recall"] > 0.8 and m["coverage"] > 0.8
    assert m["frechet_distance"] < 1.5 * ref["frechet_distance"]
    assert m["tstr_ratio"] > 0.9 and ref["tstr_accuracy"] > 0.9
    assert m["mode_coverage"] == 1.0 and m["mode_entropy"] > 0.95 and m["label_agreement"] > 0.9
    assert m["exact_copy_share"] == 0.0 and m["dcr_ratio"] > 0.8
    assert good.info["n_train"] == len(digits["X_train"]) and good.info["n_holdout"] == len(digits["X_test"])
    assert good.info["holdout"] == "X_test" and good.info["n_synthetic"] == len(digits["X_syn"])


def test_samples_from_the_real_distribution_score_as_the_reference_does():
    # 600 synthetic samples (the default: as many as the training split) against a 200-sample
    # holdout: compared at their own sizes, the synthetic column looked better than real data
    # (Fréchet distance 0.09 against 0.18, coverage 0.97 against 0.77).
    gaps = {"frechet_distance": [], "coverage": [], "sliced_wasserstein": []}
    for seed in range(3):
        rng = np.random.default_rng(seed)
        report = evaluate(rng.normal(size=(600, 8)), rng.normal(size=(800, 8)), random_state=seed)
        for key in gaps:
            gaps[key].append(report.metrics[key] - report.reference[key])
    assert abs(np.mean(gaps["frechet_distance"])) < 0.04
    assert abs(np.mean(gaps["sliced_wasserstein"])) < 0.015
    assert abs(np.mean(gaps["coverage"])) < 0.05


def test_mode_collapse_is_flagged(digits, features, good):
    threes = digits["y_syn"] == 3
    with pytest.warns(UserWarning, match="single class"):
        collapsed = _evaluate(digits, features, (digits["X_syn"][threes], digits["y_syn"][threes]))
    m = collapsed.metrics
    assert m["recall"] < 0.3 and m["coverage"] < 0.3  # diversity lost
    assert m["precision"] > 0.8  # yet every sample looks real
    assert m["mode_coverage"] <= 0.2 and m["mode_entropy"] < 0.2
    assert m["tstr_accuracy"] < 0.2
    assert m["frechet_distance"] > 5 * good.metrics["frechet_distance"]


def test_noise_is_far_from_real(digits, features, good):
    rng = np.random.RandomState(0)
    noise = rng.randint(0, 17, size=digits["X_syn"].shape).astype(np.float64)
    report = _evaluate(digits, features, (noise, digits["y_syn"]))
    m = report.metrics
    assert m["frechet_distance"] > 10 * good.metrics["frechet_distance"]
    assert m["mmd"] > 10 * max(good.metrics["mmd"], 1e-3)
    # density and coverage count real neighbourhoods: robust to the outliers that make the
    # k-NN balls of a few real samples huge (and precision lenient)
    assert m["density"] < 0.3 and m["coverage"] < 0.1 and m["recall"] < 0.1
    assert m["precision"] < 0.6 * good.metrics["precision"] and m["tstr_ratio"] < 0.5


def test_internal_split_is_the_digits_protocol_and_copies_are_flagged(digits, features):
    # The digits-protocol training set itself as "synthetic" data: a generator that copies.
    report = evaluate((digits["X_rest"], digits["y_rest"]), digits["images"], digits["target"],
                      features=FrozenEstimator(features), n_samples=300)
    assert report.info["n_train"] == 1347 and report.info["n_holdout"] == 450
    assert report.info["n_synthetic"] == 300 and "stratified split" in report.info["holdout"]
    m, ref = report.metrics, report.reference
    assert m["exact_copy_share"] == 1.0 and m["near_copy_share"] == 1.0 and m["dcr_median"] == 0.0
    assert ref["near_copy_share"] == pytest.approx(0.05, abs=0.03)


def test_unlabelled_evaluation_skips_label_metrics(digits, features):
    report = evaluate(digits["X_syn"], digits["X_train"], X_test=digits["X_test"],
                      features=FrozenEstimator(features))
    assert "tstr_accuracy" not in report.metrics and "mode_coverage" not in report.metrics
    assert {"frechet_distance", "precision", "dcr_ratio"} <= set(report.metrics)


def test_fitted_vae_end_to_end(digits, features, tiny_digits_vae):
    vae, _ = tiny_digits_vae  # fitted on the digits-protocol training split
    report = evaluate(vae, digits["images"], digits["target"], features=FrozenEstimator(features),
                      n_samples=300, log_likelihood=True)  # the same split, made inside
    assert report.info["n_train"] == 1347 and report.info["n_holdout"] == 450
    assert report.info["n_synthetic"] == 300 and "VAE.generate" == report.info["synthetic_source"]
    assert report.info["features"].startswith("ClassifierFeatures (64-d, trained on 10 classes")
    assert report.synthetic_samples.shape[1:] == (8, 8) and report.synthetic_labels is not None
    m = report.metrics
    assert 0 < m["bits_per_dim"] < math.log2(17)  # better than uniform over 17 levels
    assert 0 <= m["tstr_accuracy"] <= 1 and 0 <= m["precision"] <= 1
    # same seed, same samples, same numbers
    again = evaluate(vae, digits["images"], digits["target"], n_samples=300,
                     features=FrozenEstimator(ClassifierFeatures().fit(digits["X_train"][:10])))
    assert again.metrics["tstr_accuracy"] == m["tstr_accuracy"]
    with pytest.raises(ValueError, match="log_likelihood=True needs a generator"):
        evaluate((digits["X_syn"], digits["y_syn"]), digits["X_train"], digits["y_train"], log_likelihood=True)


# -- the report -----------------------------------------------------------------------------------
def test_report_dict_json_and_table(good):
    d = json.loads(good.to_json())
    assert set(d) == {"metrics", "reference", "info"}
    assert d["metrics"]["precision"] == good.metrics["precision"]
    assert d["reference"]["tstr_accuracy"] == good.reference["tstr_accuracy"]
    nan_report = EvaluationReport(metrics={"dcr_ratio": float("nan")})
    assert json.loads(nan_report.to_json())["metrics"]["dcr_ratio"] is None
    table = str(good)
    assert table == good.table()
    rows = [line for line in table.splitlines() if line.split() and line.split()[0] in good.metrics]
    assert len(rows) == len(good.metrics)
    # the numbers are right-aligned in columns
    ends = {line.index(line.split()[1]) + len(line.split()[1]) for line in rows}
    assert len(ends) == 1
    assert "n/a" in nan_report.table()


def test_plot_writes_a_png_and_refuses_to_overwrite(good, tmp_path):
    path = good.plot(tmp_path / "report.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 800
    with pytest.raises(FileExistsError, match="exists"):
        good.plot(path)
    before = path.stat().st_mtime_ns
    good.plot(path, overwrite=True)
    assert path.stat().st_mtime_ns >= before and not list(tmp_path.glob("*.part"))


def test_tabular_report_on_breast_cancer(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    X_train, X_syn, y_train, y_syn = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest)
    good = evaluate((X_syn, y_syn), X_train, y_train, X_test=X_test, y_test=y_test)
    # Shuffling each column independently keeps every marginal but breaks the joint distribution.
    rng = np.random.RandomState(0)
    shuffled = np.column_stack([rng.permutation(col) for col in X_syn.T])
    bad = evaluate((shuffled, y_syn), X_train, y_train, X_test=X_test, y_test=y_test)
    assert good.info["features"].startswith("standardised raw features") and not good.is_image
    assert bad.metrics["frechet_distance"] > 3 * good.metrics["frechet_distance"]
    assert bad.metrics["tstr_accuracy"] < good.metrics["tstr_accuracy"] - 0.1
    assert good.metrics["tstr_ratio"] > 0.9
    path = bad.plot(tmp_path / "tabular.png")
    with Image.open(path) as img:
        assert img.format == "PNG"


# -- errors ---------------------------------------------------------------------------------------
def test_clear_errors(digits):
    X, y = digits["X_train"], digits["y_train"]
    with pytest.raises(ValueError, match=r"synthetic samples have sample shape \(64,\).*\(8, 8\)"):
        evaluate(digits["X_syn"].reshape(-1, 64), X, y)
    with pytest.raises(ValueError, match="not among the real labels"):
        evaluate((digits["X_syn"], digits["y_syn"].astype(str)), X, y)
    with pytest.raises(ValueError, match="y_test"):
        evaluate(digits["X_syn"], X, y, X_test=digits["X_test"])
    with pytest.raises(ValueError, match="only 449 synthetic samples"):
        evaluate(digits["X_syn"], X, y, n_samples=1000)
    with pytest.raises(ValueError, match="at least 6"):
        evaluate(digits["X_syn"][:3], X, y)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(np.full((20, 8, 8), np.nan), X, y)
    with pytest.raises(TypeError, match="generate method"):
        evaluate("samples.npz", X, y)
    with pytest.raises(ValueError, match="length 3"):
        evaluate((digits["X_syn"], digits["y_syn"], None), X, y)
    with pytest.raises(ValueError, match=r"random_state must be an int in \[0, 2\*\*32 - 1\]"):
        evaluate(digits["X_syn"], X, y, random_state=-1)


def test_the_largest_seed_works():
    rng = np.random.default_rng(0)
    report = evaluate(rng.normal(size=(60, 3)), rng.normal(size=(80, 3)), random_state=2**32 - 1)
    assert report.info["random_state"] == 2**32 - 1


def test_samples_in_other_units_are_warned_about():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 17, (80, 8, 8)).astype(float)
    with pytest.warns(UserWarning, match=r"synthetic samples span \[0, 240\] but the real ones \[0, 16\]"):
        evaluate(real[:60] * 15, real, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(rng.integers(0, 17, (60, 2)).astype(float), real[:, 0, :2], random_state=0)


# -- DataFrames ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wine_frame():
    """Wine with a category, a bool and a string column derived from its measurements."""
    import pandas as pd
    from sklearn.datasets import load_wine

    d = load_wine(as_frame=True)
    df = d.frame.drop(columns="target").iloc[:, :5].copy()
    df["grade"] = pd.Categorical(np.where(df["alcohol"] > 13, "high", "low"))
    df["flag"] = df["malic_acid"] > 2
    df["name"] = np.where(df["ash"] > 2.4, "x", "y")
    return df, d.target.to_numpy()


def test_dataframe_with_categorical_columns_is_compared_one_hot(wine_frame):
    df, y = wine_frame
    a, b, y_a, y_b = train_test_split(df, y, test_size=0.5, random_state=0, stratify=y)
    report = evaluate((b, y_b), a, y_a)  # real rows posing as synthetic
    assert report.feature_names == ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium",
                                    "grade=high", "grade=low", "flag=False", "flag=True", "name=x", "name=y"]
    assert report.info["sample_shape"] == [11]
    assert report.metrics["tstr_ratio"] > 0.9
    # The categorical columns count: the same rows with their categories scrambled score worse.
    scrambled = b.copy()
    rng = np.random.RandomState(0)
    for column in ("grade", "flag", "name"):
        scrambled[column] = rng.permutation(scrambled[column].to_numpy())
    worse = evaluate((scrambled, y_b), a, y_a)
    assert worse.metrics["frechet_distance"] > report.metrics["frechet_distance"] + 0.5
    assert worse.metrics["precision"] < report.metrics["precision"]


def test_dataframe_synthetic_rows_must_match_the_real_table(wine_frame):
    df, y = wine_frame
    a, b, y_a, y_b = train_test_split(df, y, test_size=0.5, random_state=0, stratify=y)
    unknown = b.assign(name="zzz")
    with pytest.raises(ValueError, match="the synthetic samples column 'name' has values not seen in fit: \\['zzz'\\]"):
        evaluate((unknown, y_b), a, y_a)
    with pytest.raises(ValueError, match="the synthetic samples lacks the columns \\['name'\\]"):
        evaluate((b.drop(columns="name"), y_b), a, y_a)
    reordered = b[list(b.columns[::-1])]
    with pytest.raises(ValueError, match="X_test has the columns .* both must have the same columns"):
        evaluate((b, y_b), a, y_a, X_test=reordered, y_test=y_b)


def test_dataframe_generator_is_evaluated_with_its_likelihood(wine_frame):
    from synthaug import VAE

    df, y = wine_frame
    vae = VAE(epochs=3, random_state=0).fit(df, y)
    report = evaluate(vae, df, y, log_likelihood=True)
    assert report.info["synthetic_source"] == "VAE.generate"
    assert report.info["n_synthetic"] == report.info["n_train"]
    assert np.isfinite(report.metrics["bits_per_dim"])
    assert 0 <= report.metrics["coverage"] <= 1
