import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

import synthaug
from synthaug import GAN
from synthaug.metrics import frechet_distance, mmd
from synthaug.models.networks import MLP, ConvDecoder, ConvEncoder

TINY = dict(architecture="mlp", hidden_units=(16,), latent_dim=4, epochs=2, random_state=0)


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return train_test_split(d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)


@pytest.fixture(scope="module")
def fitted(digits, tmp_path_factory):
    X_train, _, y_train, _ = digits
    grids = tmp_path_factory.mktemp("grids")
    gan = GAN(hidden_units=(128, 128), epochs=30, learning_rate=1e-3, sample_dir=grids, sample_every=15,
              random_state=0).fit(X_train, y_train)
    return gan, grids


def test_critic_finds_a_gap_and_the_generator_closes_it(fitted):
    gan, _ = fitted
    h = gan.history_
    assert set(h) == {"critic_loss", "generator_loss", "gradient_penalty", "wasserstein"}
    assert all(len(v) == 30 and np.all(np.isfinite(v)) for v in h.values())
    w = np.asarray(h["wasserstein"])
    # the critic first separates real from generated samples, then the generator catches up
    assert w.argmax() < len(w) // 4 and w[-1] < 0.5 * w.max()
    assert h["critic_loss"] == pytest.approx(list(-w))  # the WGAN critic loss is -(E D(real) - E D(fake))


def test_samples_beat_independent_pixels(fitted, digits):
    gan, _ = fitted
    X_train, X_test, _, _ = digits
    flat = lambda A: A.reshape(len(A), -1)
    X, _ = gan.generate(len(X_test), random_state=0)
    # a strong noise baseline: every pixel drawn from its own real marginal, independently
    rng = np.random.RandomState(0)
    pixels = flat(X_train)
    independent = np.stack([rng.choice(pixels[:, j], len(X_test)) for j in range(64)], axis=1)
    fd_gan, fd_noise = frechet_distance(flat(X_test), flat(X)), frechet_distance(flat(X_test), independent)
    assert fd_gan < 0.5 * fd_noise
    assert mmd(flat(X_test), flat(X)) < mmd(flat(X_test), independent)


def test_conditional_samples_have_the_requested_class(fitted, digits):
    gan, _ = fitted
    X_train, _, y_train, _ = digits
    classifier = SVC().fit(X_train.reshape(len(X_train), -1), y_train)
    requested = np.repeat(np.arange(10), 50)
    X, y = gan.generate(len(requested), y=requested, random_state=1)
    np.testing.assert_array_equal(y, requested)
    predicted = classifier.predict(X.reshape(len(X), -1))
    assert np.mean(predicted == requested) > 0.8
    assert len(np.unique(predicted)) == 10


def test_generate_shape_dtype_range_and_seed(fitted):
    gan, _ = fitted
    assert isinstance(gan.model_.generator, MLP)  # architecture="auto" on 8x8 images
    X, y = gan.generate(300, random_state=3)
    assert X.shape == (300, 8, 8) and X.dtype == np.float64
    assert X.min() >= 0 and X.max() <= 16 and np.all(X == np.round(X))
    # labels in the training class balance
    assert set(np.unique(y)) == set(range(10))
    X2, y2 = gan.generate(300, random_state=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, gan.generate(300, random_state=4)[0])
    assert np.all(gan.generate(5, y=7, random_state=0)[1] == 7)


def test_sample_grid_every_n_epochs(fitted):
    from PIL import Image

    _, grids = fitted
    assert sorted(p.name for p in grids.iterdir()) == ["epoch_0015.png", "epoch_0030.png"]
    # one row of 10 per class, 8x8 digits with a 1-pixel border, enlarged 4 times
    assert Image.open(grids / "epoch_0030.png").size == (4 * (10 * 9 + 1), 4 * (10 * 9 + 1))


def test_save_load_pickle_clone(fitted, tmp_path):
    gan, _ = fitted
    path = gan.save(tmp_path / "g.synthaug")
    loaded = synthaug.load(path)
    assert type(loaded) is GAN and loaded.sample_dir == str(gan.sample_dir)  # JSON holds no paths
    assert loaded.get_params() == {**gan.get_params(), "sample_dir": str(gan.sample_dir)}
    np.testing.assert_array_equal(loaded.generate(20, random_state=1)[0], gan.generate(20, random_state=1)[0])
    assert loaded.history_ == gan.history_
    for v, w in zip(gan.model_.weights, loaded.model_.weights):
        np.testing.assert_array_equal(v.numpy(), w.numpy())
    unpickled = pickle.loads(pickle.dumps(gan))
    np.testing.assert_array_equal(unpickled.generate(20, y=3, random_state=2)[0],
                                  gan.generate(20, y=3, random_state=2)[0])
    c = clone(gan)
    assert not hasattr(c, "model_") and c.get_params() == gan.get_params()


def test_sampling_uses_the_moving_average_of_the_generator(fitted):
    gan, _ = fitted
    model = gan.model_
    gen, ema = model.generator.get_weights(), model.generator_ema.get_weights()
    assert len(gen) == len(ema) and not model.generator_ema.trainable_weights
    assert any(not np.allclose(a, b) for a, b in zip(gen, ema))
    # one update per generator step: 1347 // (64 * n_critic) steps in each of 30 epochs
    assert float(model.ema_updates.numpy()) == 30 * (1347 // (64 * gan.n_critic))


def test_divergence_stops_training_and_keeps_the_last_good_weights(digits, monkeypatch):
    from keras import ops

    from synthaug.models import gan as gan_module

    X_train, _, y_train, _ = digits
    snapshots = []
    guard_epoch_end = gan_module._DivergenceGuard.on_epoch_end
    critic_loss = gan_module.GANModel.critic_loss

    def spy(self, epoch, logs=None):
        snapshots.append([w.copy() for w in self.model.get_weights()])
        guard_epoch_end(self, epoch, logs)

    def poisoned(self, d_real, d_fake):
        # NaN from the 16th critic update on: one step of n_critic=5 updates per epoch, so epoch 4
        return critic_loss(self, d_real, d_fake) * ops.where(self.optimizer.iterations >= 15, np.nan, 1.0)

    monkeypatch.setattr(gan_module._DivergenceGuard, "on_epoch_end", spy)
    monkeypatch.setattr(gan_module.GANModel, "critic_loss", poisoned)
    gan = GAN(**{**TINY, "epochs": 10, "n_critic": 5})
    with pytest.raises(FloatingPointError, match=r"diverged in epoch 4: critic_loss=nan.* weights of epoch 3"):
        gan.fit(X_train[:320], y_train[:320])
    assert len(snapshots) == 4 and all(len(v) == 3 for v in gan.history_.values())
    assert not all(np.all(np.isfinite(w)) for w in snapshots[3])  # the NaN update reached the weights
    for restored, kept in zip(gan.model_.get_weights(), snapshots[2]):
        np.testing.assert_array_equal(restored, kept)
    assert np.all(np.isfinite(gan.generate(10, random_state=0)[0]))


def test_a_huge_learning_rate_diverges_at_once_and_keeps_the_initial_weights(digits):
    from synthaug.models.gan import GANModel

    X_train, _, y_train, _ = digits
    gan = GAN(**{**TINY, "learning_rate": 1e6})
    with pytest.raises(FloatingPointError, match="diverged in epoch 1: .*initial weights were restored.*learning_rate"):
        gan.fit(X_train[:320], y_train[:320])
    assert all(v == [] for v in gan.history_.values())
    fresh = GANModel.from_config(gan.model_.get_config())  # seeded initialisers: the initial weights
    for restored, initial in zip(gan.model_.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(restored, initial)


@pytest.mark.parametrize("loss", ["hinge", "non-saturating"])
def test_other_losses_learn_a_correlated_gaussian(loss):
    X = np.random.RandomState(0).multivariate_normal([5, -3], [[4, 3], [3, 4]], size=800).astype(np.float32)
    gan = GAN(loss=loss, hidden_units=(32, 32), latent_dim=4, epochs=20, batch_size=32, n_critic=2,
              learning_rate=1e-3, random_state=0).fit(X)
    assert isinstance(gan.model_.generator, MLP)
    S = gan.generate(2000, random_state=0)
    assert S.shape == (2000, 2) and S.dtype == np.float32
    assert np.all(S >= X.min(0)) and np.all(S <= X.max(0))  # continuous data stay in the training range
    assert np.corrcoef(S.T)[0, 1] == pytest.approx(0.75, abs=0.1)
    assert np.all(np.abs(S.mean(0) - [5, -3]) < 1.5)


def test_conv_gan_on_odd_sized_colour_images(tmp_path, capsys):
    rng = np.random.RandomState(0)
    X = (rng.rand(40, 17, 16, 3) * 255).astype(np.uint8)
    gan = GAN(hidden_units=(16,), conv_filters=(4,), latent_dim=4, epochs=2, n_critic=2, verbose=1,
              random_state=0).fit(X)
    err = capsys.readouterr().err
    assert "GAN" in err and "2/2" in err
    # architecture="auto": convolutions from 16x16 up
    assert isinstance(gan.model_.generator, ConvDecoder) and isinstance(gan.model_.critic_body, ConvEncoder)
    out = gan.generate(4, random_state=0)
    assert out.shape == (4, 17, 16, 3) and out.dtype == np.uint8
    loaded = synthaug.load(gan.save(tmp_path / "c.synthaug"))
    np.testing.assert_array_equal(loaded.generate(4, random_state=0), out)


def test_parameter_and_input_errors():
    X = np.random.RandomState(0).rand(20, 3)
    with pytest.raises(NotFittedError):
        GAN().generate(2)
    with pytest.raises(ValueError, match="loss must be .wgan-gp., .hinge. or .non-saturating."):
        GAN(loss="wasserstein").fit(X)
    with pytest.raises(ValueError, match="n_critic must be a positive integer"):
        GAN(n_critic=0).fit(X)
    with pytest.raises(ValueError, match="hidden_units must be a non-empty tuple"):
        GAN(hidden_units=()).fit(X)
    with pytest.raises(ValueError, match="ema_decay"):
        GAN(ema_decay=1.0).fit(X)
    with pytest.raises(ValueError, match="architecture='conv' needs images"):
        GAN(architecture="conv").fit(X)
    with pytest.raises(ValueError, match="sample_dir needs images"):
        GAN(sample_dir="grids").fit(X)
    with pytest.raises(ValueError, match="NaN"):
        GAN(**TINY).fit(np.array([[1.0, np.nan], [2.0, 3.0], [1.0, 1.0]]))


DISTRIBUTED = textwrap.dedent("""
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from sklearn.datasets import load_digits
    from synthaug import GAN

    d = load_digits()
    gan = GAN(hidden_units=(32,), latent_dim=4, epochs=2, n_critic=1, random_state=0)
    with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
        gan.fit(d.images[:400], d.target[:400])
    model = gan.model_
    samples, labels = gan.generate(20, y=3, random_state=0)
    print("RESULT" + json.dumps({
        "variables": sorted({type(v.value).__name__ for v in model.variables}),
        "replicas_agree": all(np.array_equal(*(c.numpy() for c in v.value.values)) for v in model.weights),
        "ema_moved": any(not np.array_equal(e.numpy(), w.numpy())
                         for e, w in zip(model.generator_ema.weights, model.generator.weights)),
        "ema_updates": float(model.ema_updates.numpy()),
        "finite": all(np.isfinite(v).all() for v in gan.history_.values()),
        "shape": list(samples.shape), "labels": sorted(set(labels.tolist())),
    }))
""")


def test_fit_under_a_mirrored_strategy_on_two_devices():
    run = subprocess.run([sys.executable, "-c", DISTRIBUTED], capture_output=True, text=True, timeout=600)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    out = json.loads(lines[0][len("RESULT"):])
    assert out["variables"] == ["MirroredVariable"]
    # the moving average is updated once per step, identically on both replicas
    assert out["replicas_agree"] and out["ema_moved"] and out["ema_updates"] == 2 * (400 // 64)
    assert out["finite"] and out["shape"] == [20, 8, 8] and out["labels"] == [3]
