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


@pytest.fixture(scope="session")
def tiny_image_vae(tmp_path_factory):
    """A tiny VAE fitted once on 32×32 uint8 thumbnails of real photographs (large enough for the
    pixel watermark), and the file it is saved in."""
    import numpy as np
    from skimage import data
    from skimage.color import rgb2gray
    from skimage.transform import resize

    from synthaug import VAE

    sources = [data.camera(), rgb2gray(data.astronaut()), rgb2gray(data.coffee()), data.moon()]
    thumbs = [np.rint(resize(s / s.max(), (32, 32), anti_aliasing=True) * 255) for s in sources]
    rng = np.random.default_rng(0)
    X = np.stack([np.clip(t + rng.integers(-8, 9, t.shape), 0, 255) for t in thumbs for _ in range(16)])
    vae = VAE(latent_dim=2, hidden_units=(32,), conv_filters=(8, 16), epochs=4, batch_size=8, decoder_output="mean",
              validation_fraction=0.0, random_state=0).fit(X.astype(np.uint8))
    return vae, vae.save(tmp_path_factory.mktemp("models") / "tiny-image-vae.synthaug")


@pytest.fixture(scope="module")
def eager_tensorflow():
    """Run TensorFlow functions eagerly for a module of API-contract tests on tiny fits.

    Tracing a training step costs several times more than running a few of them on a tiny
    model, and tests of the scikit-learn / imbalanced-learn contracts fit hundreds of those.
    The model tests and the benchmarks exercise the compiled graphs.
    """
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)
