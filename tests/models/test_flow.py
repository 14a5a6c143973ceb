import pickle

import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import multivariate_normal
from scipy.stats import t as student_t
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split

import synthaug
from synthaug import Flow

FAST = dict(n_layers=2, hidden_units=(32,), epochs=3, random_state=0)


@pytest.fixture(scope="module")
def wine():
    X = load_wine().data.astype(np.float32)
    return train_test_split(X, test_size=0.3, random_state=0)


@pytest.fixture(scope="module", params=["realnvp", "maf"])
def wine_flow(request, wine):
    X_train, _ = wine
    # no validation split: every weight must move during the 25 epochs (the base's learned
    # degrees of freedom included)
    return Flow(flow_type=request.param, n_layers=3, hidden_units=(32,), epochs=25, validation_fraction=0.0,
                base_df=None, random_state=0).fit(X_train)


def test_transform_round_trip_is_exact(wine_flow, wine):
    _, X_test = wine
    Z = wine_flow.transform(X_test)
    assert Z.shape == X_test.shape and Z.dtype == np.float32
    back = wine_flow.inverse_transform(Z)
    # relative to the feature scale: the proline column is in the thousands
    err = np.abs(back - X_test) / X_test.std(0)
    assert err.max() < 1e-4


def test_in_graph_student_t_sampler_is_exact_and_compiles_with_xla(wine_flow):
    """The in-graph base sampler (augment, SyntheticMix) draws the learned Student-t exactly, under XLA too."""
    import tensorflow as tf
    from scipy import stats

    nu = wine_flow.model_.degrees_of_freedom().numpy()
    assert np.ptp(nu) > 0  # learned per dimension
    draw = tf.function(lambda seed: wine_flow.model_.sample_base_graph(20000, seed), jit_compile=True)
    Z = draw(tf.constant([3, 4])).numpy()
    np.testing.assert_array_equal(Z, draw(tf.constant([3, 4])).numpy())  # stateless: same seed, same draws
    p_values = [stats.kstest(Z[:, j], stats.t(nu[j]).cdf).pvalue for j in range(Z.shape[1])]
    assert min(p_values) > 1e-3, p_values
    assert stats.kstest(Z[:, 0], stats.norm.cdf).pvalue < 1e-3 or nu[0] > 30  # it is not a normal
    sample = tf.function(lambda seed: wine_flow._sample_graph(64, None, seed), jit_compile=True)
    S = sample(tf.constant([0, 1])).numpy()
    assert S.shape == (64, 13) and np.isfinite(S).all()


def test_held_out_density_beats_independent_features():
    # breast_cancer's features are skewed and strongly correlated: a flow must beat a product of
    # per-feature Gaussians on held-out data (the comparison with a full GaussianMixture lives in
    # the benchmark, where it is reported).
    from scipy.stats import norm

    X_train, X_test = train_test_split(load_breast_cancer().data, test_size=0.3, random_state=0)
    flow = Flow(n_layers=4, hidden_units=(64,), epochs=30, random_state=0).fit(X_train)
    independent = norm(X_train.mean(0), X_train.std(0)).logpdf(X_test).sum(1)
    assert np.median(flow.score_samples(X_test)) > np.median(independent) + 10


def test_every_weight_is_trained_and_saved(wine_flow, tmp_path):
    from synthaug.models.flow import FlowModel

    model = wine_flow.model_
    n_hidden = len(wine_flow.hidden_units)
    per_layer = 2 * (n_hidden + 1) + 2  # each network's kernels and biases, plus actnorm loc/scale
    assert len(model.trainable_variables) == wine_flow.n_layers * per_layer + 1  # + the base's df
    # a freshly built model with the same config holds the initial values (seeded initializers)
    fresh = FlowModel.from_config(model.get_config())
    assert [v.shape for v in fresh.trainable_variables] == [v.shape for v in model.trainable_variables]
    for v, v0 in zip(model.trainable_variables, fresh.trainable_variables):
        assert not np.allclose(v.numpy(), v0.numpy()), f"{v.path} was never updated"
    loaded = synthaug.load(wine_flow.save(tmp_path / "f.synthaug"))
    for v, w in zip(model.weights, loaded.model_.weights):
        np.testing.assert_array_equal(v.numpy(), w.numpy())


@pytest.mark.parametrize("base", ["student_t", "normal"])
def test_log_det_matches_numerical_jacobian(base):
    rng = np.random.RandomState(0)
    X = rng.randn(200, 3).astype(np.float32) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1]], np.float32)
    X[:5] *= 6  # beyond the training range too, where the networks' inputs are soft-clipped
    for flow_type in ("realnvp", "maf"):
        flow = Flow(flow_type=flow_type, base=base, **FAST).fit(X[5:])
        x = tf.constant(flow._to_network(X[:5]))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            z = flow.model_.to_base(x)
        J = tape.batch_jacobian(z, x).numpy().astype(np.float64)
        z = z.numpy().astype(np.float64)
        if base == "normal":
            log_base = multivariate_normal(np.zeros(3)).logpdf(z)
        else:
            log_base = student_t(flow.base_df).logpdf(z).sum(1)
        expected = log_base + np.linalg.slogdet(J)[1] + flow._log_jacobian()
        np.testing.assert_allclose(flow.score_samples(X[:5]), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("image_layout", ["squeeze", "checkerboard"])
def test_image_couplings_condition_on_the_layout_halves(image_layout):
    from synthaug.models.flow import FlowModel

    h, w = 4, 6
    model = FlowModel(input_dim=h * w, n_layers=6, hidden_units=(4,), image_shape=(h, w, 1),
                      image_layout=image_layout, seed=0)
    rows, cols = np.divmod(np.arange(h * w), w)
    splits = {"checkerboard": (rows + cols) % 2, "row": rows % 2, "column": cols % 2}
    expected = ["checkerboard"] * 6 if image_layout == "checkerboard" else [
        "checkerboard", "checkerboard", "row", "row", "column", "column"]
    order = np.arange(h * w)
    for i, (relative, split) in enumerate(zip(model.permutations, expected)):
        order = order[relative]  # the pixel at each input position of layer i
        conditioning, transformed = splits[split][order[:model.n_masked]], splits[split][order[model.n_masked:]]
        # each layer conditions on one half of the split and transforms the other, in turns
        assert len(set(conditioning)) == 1 and set(transformed) == {1 - conditioning[0]}
        assert conditioning[0] == i % 2
    assert sorted(order) == list(range(h * w))
    # a model saved before the option existed (no image_layout in its config) keeps its checkerboard
    config = {k: v for k, v in model.get_config().items() if k != "image_layout"}
    assert FlowModel.from_config(config).image_layout == "checkerboard"


def test_student_t_base_keeps_far_rows_likely():
    # Hold out the breast_cancer rows with the most extreme feature values: far outside the
    # training range a Gaussian base charges ~z**2/2 nats per coordinate, a Student-t base ~log z.
    X = load_breast_cancer().data
    z = np.abs((X - X.mean(0)) / X.std(0)).max(1)
    far = np.argsort(z)[-15:]
    X_train, X_far = np.delete(X, far, axis=0), X[far]
    scores = {}
    for base in ("student_t", "normal"):
        flow = Flow(base=base, n_layers=4, hidden_units=(64,), epochs=30, random_state=0).fit(X_train)
        scores[base] = flow.score_samples(X_far)
        X_gen = flow.generate(200, random_state=0, temperature=0.7)
        assert X_gen.shape == (200, 30) and np.isfinite(X_gen).all()
    assert np.isfinite(scores["student_t"]).all()
    assert np.median(scores["student_t"]) > np.median(scores["normal"])
    assert scores["student_t"].min() > scores["normal"].min()


def test_digits_bound_beats_independent_pixels_and_samples_keep_levels():
    d = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(d.images, d.target, test_size=0.25, random_state=0,
                                                        stratify=d.target)
    flow = Flow(n_layers=4, hidden_units=(128,), epochs=8, random_state=0).fit(X_train, y_train)
    levels = X_train.reshape(len(X_train), -1).astype(int)
    counts = np.stack([np.bincount(levels[:, j], minlength=17) + 1 for j in range(64)])
    probs = counts / counts.sum(1, keepdims=True)
    test_levels = X_test.reshape(len(X_test), -1).astype(int)
    independent = np.log(probs[np.arange(64), test_levels]).sum(1).mean()
    bound = flow.score_samples(X_test, y_test)
    assert bound.mean() > independent
    # more dequantisation draws tighten the importance-weighted bound
    assert bound.mean() > flow.set_params(n_dequantization=1).score_samples(X_test, y_test).mean()
    X, y = flow.generate(30, random_state=0)
    assert X.shape == (30, 8, 8) and np.all(X == np.round(X)) and X.min() >= 0 and X.max() <= 16
    X2, y2 = flow.generate(30, random_state=0)
    np.testing.assert_array_equal(X, X2)
    # lower temperature: samples closer to the class's typical image
    spread = lambda t: flow.generate(200, y=3, random_state=1, temperature=t)[0].std(0).mean()
    assert spread(0.5) < spread(1.0)
    with pytest.raises(ValueError, match="temperature"):
        flow.generate(2, temperature=0)


def test_conditional_scores_marginalise_over_classes():
    X = load_breast_cancer().data[:200, :6]
    y = load_breast_cancer().target[:200]
    flow = Flow(**FAST).fit(X, y)
    per_class = np.stack([flow.score_samples(X[:10], np.full(10, c)) for c in (0, 1)])
    prior = np.bincount(y) / len(y)
    expected = np.log(np.exp(per_class) .T @ prior)
    np.testing.assert_allclose(flow.score_samples(X[:10]), expected, rtol=1e-5)
    # without labels, transform maps each sample with its most probable class, argmax_c p(c) p(x | c)
    best = (per_class + np.log(prior)[:, None]).argmax(0)
    np.testing.assert_allclose(flow.transform(X[:10]), flow.transform(X[:10], best), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="class-conditional"):
        flow.inverse_transform(flow.transform(X[:3]))


def test_pickle_clone_and_errors(tmp_path):
    X = load_wine().data
    flow = Flow(**FAST).fit(X)
    again = pickle.loads(pickle.dumps(flow))
    np.testing.assert_allclose(again.score_samples(X[:5]), flow.score_samples(X[:5]), rtol=1e-6)
    # flow_type="auto": MAF for feature vectors, RealNVP for images, and a reload keeps the choice
    assert flow.flow_type_ == again.flow_type_ == "maf"
    flow.save(tmp_path / "wine.synthaug")
    assert synthaug.load(tmp_path / "wine.synthaug").flow_type_ == "maf"
    images = load_digits().images[:40]
    assert Flow(n_layers=2, hidden_units=(8,), epochs=1, random_state=0).fit(images).flow_type_ == "realnvp"
    assert clone(flow).get_params() == flow.get_params()
    with pytest.raises(NotFittedError):
        Flow().generate(2)
    with pytest.raises(ValueError, match="flow_type"):
        Flow(flow_type="glow").fit(X)
    with pytest.raises(ValueError, match="base must be"):
        Flow(base="cauchy").fit(X)
    with pytest.raises(ValueError, match="base_df must be > 1"):
        Flow(base_df=1.0).fit(X)
    with pytest.raises(ValueError, match=r"base_df must be finite; got inf \(for a Gaussian base use base='normal'\)"):
        Flow(base_df=float("inf")).fit(X)
    for temperature in ("1", None, float("inf"), 0.0, -1):
        with pytest.raises(ValueError, match="temperature must be a positive, finite number"):
            flow.generate(2, temperature=temperature)
    with pytest.raises(ValueError, match="1 feature"):
        Flow(**FAST).fit(X[:, :1])
    with pytest.raises(ValueError, match="base-space points"):
        flow.inverse_transform(np.zeros((2, 3)))
