"""scikit-learn's own estimator checks on fast configurations of every generator."""
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from synthaug import GAN, VAE, Flow

EXPECTED_FAILED = {}


# API-contract checks on tiny fits: run eagerly (see eager_tensorflow in conftest.py).
pytestmark = pytest.mark.usefixtures("eager_tensorflow")


@parametrize_with_checks(
    [
        VAE(hidden_units=(8,), latent_dim=2, epochs=2, n_importance=4, random_state=0),
        Flow(n_layers=1, hidden_units=(4,), epochs=1, random_state=0),
        GAN(architecture="mlp", hidden_units=(8,), latent_dim=2, epochs=1, random_state=0),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
