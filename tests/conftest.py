import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_digits_vae(tmp_path_factory):
    """A tiny VAE fitted once on the digits-protocol training split, and the file it is saved in."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from synthaug import VAE

    d = load_digits()
    X_train, _, y_train, _ = train_test_split(d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)
    vae = VAE(hidden_units=(32,), latent_dim=4, epochs=3, n_importance=20, random_state=0).fit(X_train, y_train)
    return vae, vae.save(tmp_path_factory.mktemp("models") / "tiny-digits-vae.synthaug")
