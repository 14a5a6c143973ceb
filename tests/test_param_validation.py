import numpy as np
import pytest
from sklearn.datasets import load_wine

from synthaug import GAN, VAE, Flow
from synthaug._param_validation import Interval, Options, PositiveInts


@pytest.mark.parametrize("constraint, value, message", [
    (Interval(1, None, integer=True), 0, "must be a positive integer; got 0"),
    (Interval(1, None, integer=True), True, "must be a positive integer; got True"),
    (Interval(1, None, integer=True), 2.0, "must be a positive integer; got 2.0"),
    (Interval(0, None, integer=True), -1, "must be a non-negative integer"),
    (Interval(0.0, 1.0, closed="left"), 1.0, r"must be in \[0.0, 1.0\); got 1.0"),
    (Interval(0.0, 0.5, closed="neither"), float("nan"), r"must be in \(0.0, 0.5\); got nan"),
    (Interval(0, None, closed="neither"), 0, "must be > 0; got 0"),
    (Interval(0, None), "1", "must be >= 0; got '1'"),
    (Options("auto", "conv", "mlp"), "cnn", "must be 'auto', 'conv' or 'mlp'; got 'cnn'"),
    (PositiveInts(), (), "must be a non-empty tuple of positive integers"),
    (PositiveInts(), (32, 0), "must be a non-empty tuple of positive integers"),
    (PositiveInts(), 32, "must be a non-empty tuple of positive integers"),
])
def test_constraints_name_the_parameter_and_the_value(constraint, value, message):
    with pytest.raises(ValueError, match="^param " + message):
        constraint.check("param", value)


@pytest.mark.parametrize("constraint, value", [
    (Interval(1, None, integer=True), np.int64(3)),
    (Interval(0.0, 1.0, closed="left"), 0.0),
    (Interval(0.0, 0.5, closed="neither"), np.float32(0.25)),
    (Options("a", "b"), "b"),
    (PositiveInts(), [8, 16]),
])
def test_valid_values_pass(constraint, value):
    constraint.check("param", value)


@pytest.mark.parametrize("estimator, message", [
    (VAE(latent_dim=0), "latent_dim must be a positive integer"),
    (VAE(dropout=1.0), r"dropout must be in \[0.0, 1.0\)"),
    (VAE(likelihood="poisson"), "likelihood must be 'auto', 'categorical' or 'gaussian'"),
    (Flow(flow_type="glow"), "flow_type must be 'auto', 'realnvp' or 'maf'"),
    (Flow(hidden_units=(64, -1)), "hidden_units must be a non-empty tuple of positive integers"),
    (Flow(learning_rate=0.0), "learning_rate must be > 0"),
    (Flow(image_layout="glow"), "image_layout must be 'squeeze' or 'checkerboard'"),
    (GAN(n_critic=0), "n_critic must be a positive integer"),
    (GAN(ema_decay=1.0), r"ema_decay must be in \[0.0, 1.0\)"),
    (VAE(verbose=-1), "verbose must be a bool or a non-negative integer; got -1"),
    (GAN(verbose=-1), "verbose must be a bool or a non-negative integer"),
    (Flow(verbose=-1), "verbose must be a bool or a non-negative integer"),
])
def test_generators_check_their_parameters_in_fit(estimator, message):
    X = load_wine().data[:20]
    with pytest.raises(ValueError, match=message):
        estimator.fit(X)
    assert not hasattr(estimator, "model_")  # refused before any work
