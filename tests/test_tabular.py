"""DataFrame <-> numeric encoding, and DataFrames through a generator (schema round trip)."""
import json
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone

import synthaug
from synthaug import VAE
from synthaug.tabular import TabularEncoder, is_dataframe

pd = pytest.importorskip("pandas")

# Contract tests on tiny fits: run eagerly (see eager_tensorflow in conftest.py).
pytestmark = pytest.mark.usefixtures("eager_tensorflow")
FAST = dict(hidden_units=(16,), latent_dim=3, epochs=3, n_importance=8, validation_fraction=0.0, random_state=0)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.RandomState(0)
    n = 120
    # a bimodal numeric column, integer and nullable-integer columns, unordered and ordered
    # categories (one of them never used), bool, object and string columns
    return pd.DataFrame({
        "age": rng.randint(18, 80, n),
        "income": np.where(rng.rand(n) < 0.5, rng.normal(30, 3, n), rng.normal(80, 5, n)).astype(np.float32),
        "city": pd.Categorical(rng.choice(["Oslo", "Rome", "Lima"], n), categories=["Lima", "Oslo", "Rome", "Kyiv"]),
        "size": pd.Categorical(rng.choice(["S", "M", "L"], n), categories=["S", "M", "L"], ordered=True),
        "member": rng.rand(n) < 0.3,
        "note": pd.Series(rng.choice(["x", "y"], n), dtype=object),
        "visits": pd.array(rng.randint(0, 5, n), dtype="Int64"),
        "code": pd.Categorical(rng.choice([3, 5, 7], n)),
    })


@pytest.fixture(scope="module")
def fitted(frame):
    y = np.arange(len(frame)) % 2
    return VAE(**FAST).fit(frame, y)


def assert_same_schema(out, frame):
    assert list(out.columns) == list(frame.columns)
    pd.testing.assert_series_equal(out.dtypes, frame.dtypes)
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            assert out[name].dtype == frame[name].dtype  # same categories, same order, same `ordered`


def test_encoder_round_trip_is_exact(frame):
    enc = TabularEncoder().fit(frame)
    Z = enc.transform(frame)
    # 2 + 4 + 3 + 2 + 2 + 1 + 3 one-hot / numeric columns
    assert Z.shape == (len(frame), 17) and Z.dtype == np.float64
    pd.testing.assert_frame_equal(enc.inverse_transform(Z), frame)
    again = TabularEncoder.from_dict(enc.to_dict())
    pd.testing.assert_frame_equal(again.inverse_transform(Z), frame)


def test_encoder_decoding_stays_in_schema(frame):
    enc = TabularEncoder().fit(frame)
    Z = np.random.RandomState(1).normal(0, 100, (50, enc.n_output_features_))
    out = enc.inverse_transform(Z)
    assert_same_schema(out, frame)
    assert out["age"].between(frame["age"].min(), frame["age"].max()).all()
    assert set(out["note"]) <= {"x", "y"}


def test_generator_schema_round_trip(fitted, frame):
    X, y = fitted.generate(40, random_state=0)
    assert is_dataframe(X) and len(X) == 40 and y.shape == (40,)
    assert_same_schema(X, frame)
    assert set(X["city"].dropna()) <= {"Lima", "Oslo", "Rome", "Kyiv"}
    assert X["income"].min() >= frame["income"].min() and X["income"].max() <= frame["income"].max()
    pd.testing.assert_frame_equal(fitted.generate(40, random_state=0)[0], X)  # same seed, same rows
    assert_same_schema(fitted.reconstruct(frame[:5], np.zeros(5, int)), frame)


def test_feature_names_and_name_checks(fitted, frame):
    np.testing.assert_array_equal(fitted.feature_names_in_, np.asarray(frame.columns, dtype=object))
    assert fitted.feature_names_in_.dtype == object
    assert fitted.n_features_in_ == frame.shape[1]
    assert fitted.transform(frame).shape == (len(frame), 3)
    with pytest.raises(ValueError, match="same order as they were in fit"):
        fitted.transform(frame[frame.columns[::-1]])
    with pytest.raises(ValueError, match="features, but VAE is expecting 8 features"), \
            pytest.warns(UserWarning, match="valid feature names"):
        fitted.transform(frame.iloc[:, :3].to_numpy())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codes = fitted.transform(frame.to_numpy())  # same columns as an object array: warns, works
    assert codes.shape == (len(frame), 3)
    assert any("valid feature names" in str(w.message) for w in caught)


def test_numpy_stays_numpy(frame):
    vae = VAE(**FAST).fit(frame[["age", "income"]])
    vae.fit(np.random.RandomState(0).normal(size=(60, 4)))  # refitting on numpy forgets the frame
    out = vae.generate(5, random_state=0)
    assert isinstance(out, np.ndarray) and out.shape == (5, 4)
    assert vae.tabular_encoder_ is None and not hasattr(vae, "feature_names_in_")


def test_save_load_pickle_clone_keep_the_schema(fitted, frame, tmp_path):
    loaded = synthaug.load(fitted.save(tmp_path / "frame.synthaug"))
    pd.testing.assert_frame_equal(loaded.generate(10, random_state=2)[0], fitted.generate(10, random_state=2)[0])
    np.testing.assert_array_equal(loaded.feature_names_in_, fitted.feature_names_in_)
    unpickled = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_frame_equal(unpickled.generate(10, random_state=2)[0], fitted.generate(10, random_state=2)[0])
    assert not hasattr(clone(fitted), "tabular_encoder_")


def test_sparse_columns_come_back_sparse():
    rng = np.random.RandomState(0)
    df = pd.DataFrame(rng.rand(40, 2), columns=["a", "b"], dtype=pd.SparseDtype(float, 0.0))
    out = VAE(**FAST).fit(df).generate(5, random_state=0)
    assert all(isinstance(dtype, pd.SparseDtype) for dtype in out.dtypes)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": ["x", "y", "x"]}), ValueError, "column 'a' contains missing"),
        (pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", None, "x"]}), ValueError, "column 'b' contains missing"),
        (pd.DataFrame({"t": pd.date_range("2026-01-01", periods=3)}), TypeError, "column 't' has dtype datetime"),
        (pd.DataFrame(np.zeros((3, 2)), columns=["a", "a"]), ValueError, "unique column names"),
        (pd.DataFrame(index=range(3)), ValueError, "no columns"),
        # values a model file's JSON cannot hold: refused at fit, not after training on save
        (pd.DataFrame({"band": pd.cut([1.0, 2.0, 3.0], 2)}), TypeError, r"column 'band': category .*Interval"),
        (pd.DataFrame({"day": pd.Categorical(pd.date_range("2026-01-01", periods=3))}), TypeError,
         "type Timestamp"),
        (pd.DataFrame({pd.Timestamp("2026-01-01"): [1.0, 2.0, 3.0]}), TypeError, "X column name .*Timestamp"),
    ],
)
def test_bad_frames(bad, error, message):
    with pytest.raises(error, match=message):
        VAE(**FAST).fit(bad)


def test_unseen_category_after_fit(fitted, frame):
    bad = frame.copy()
    bad["note"] = bad["note"].astype(object)
    bad.loc[0, "note"] = "z"
    with pytest.raises(ValueError, match="column 'note' has values not seen in fit: \\['z'\\]"):
        fitted.transform(bad)


def test_multiindex_columns_and_integer_extremes_survive_saving(tmp_path):
    # MultiIndex names are tuples (JSON gives lists back); int64/uint64 extremes are beyond
    # float64's exact range (they came back wrapped: 2**63 - 1 as -2**63)
    df = pd.DataFrame({("id", "big"): np.array([2**63 - 1] * 20, dtype=np.int64),
                       ("id", "huge"): np.array([2**64 - 1] * 20, dtype=np.uint64),
                       ("x", "v"): np.linspace(0, 1, 20)})
    model = VAE(**FAST).fit(df)
    loaded = synthaug.load(model.save(tmp_path / "m.synthaug"))
    for m in (model, loaded):
        out = m.generate(4, random_state=0)
        assert isinstance(out.columns, pd.MultiIndex) and list(out.columns) == list(df.columns)
        assert (out[("id", "big")] == 2**63 - 1).all() and (out[("id", "huge")] == 2**64 - 1).all()
    assert np.isfinite(loaded.score_samples(df)).all()


def test_a_dataframe_models_samples_are_written_as_csv(fitted, frame, tmp_path):
    from click.testing import CliRunner

    from synthaug.cli import cli

    model = fitted.save(tmp_path / "frame.synthaug")
    result = CliRunner().invoke(cli, ["generate", str(model), "-n", "12", "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "out" / "samples.csv")
    assert list(written.columns) == [*frame.columns, "y"] and len(written) == 12
    assert set(written["city"]) <= set(frame["city"].cat.categories) and set(written["y"]) <= {0, 1}
    listed = json.loads((tmp_path / "out" / "manifest.json").read_text())["files"]
    assert {f["path"] for f in listed} == {"samples.csv", "provenance.json"}
