"""synthaug.models.training: a fit whose loss turns NaN stops, keeps the best finite weights or
says that none exist."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from synthaug import Flow  # noqa: E402
from synthaug.models.training import fit_model  # noqa: E402


class Toy(keras.Model):
    """loss = mean(x) * w; a callback sets w to NaN at the start of a chosen epoch."""

    def __init__(self):
        super().__init__()
        self.w = self.add_weight(shape=(), initializer="ones", name="w")
        self.tracker = keras.metrics.Mean(name="loss")

    def call(self, x):
        return x * self.w

    def _loss(self, data):
        return tf.reduce_mean(data) * self.w

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self._loss(data)
        self.optimizer.apply(tape.gradient(loss, [self.w]), [self.w])
        self.tracker.update_state(loss)
        return {"loss": self.tracker.result()}

    def test_step(self, data):
        self.tracker.update_state(self._loss(data))
        return {"loss": self.tracker.result()}

    @property
    def metrics(self):
        return [self.tracker]


class Poison(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.at = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            self.model.w.assign(float("nan"))


class Settings:
    epochs, batch_size, patience = 6, 10, 10

    def __init__(self, validation_fraction):
        self.validation_fraction = validation_fraction

    def _progress_callbacks(self, epochs):
        return [], 0


def fit(validation_fraction, poison_at):
    model = Toy()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    Z = np.random.RandomState(0).uniform(1, 2, size=(50, 3)).astype("float32")
    history = fit_model(Settings(validation_fraction), model, Z, None, np.random.RandomState(0), 0,
                        callbacks=[Poison(poison_at)])
    return model, history


def test_a_loss_turning_nan_stops_training_and_keeps_the_best_finite_weights():
    with pytest.warns(RuntimeWarning, match="loss and val_loss became NaN or infinite at epoch 3; training "
                                             "stopped and the weights of the best validation epoch were kept"):
        model, history = fit(0.2, poison_at=2)
    assert len(history["loss"]) == 3 and np.isnan(history["loss"][-1])  # stopped at once, not after 6 epochs
    assert np.isfinite(float(model.w.numpy()))


def test_without_finite_weights_to_keep_it_is_an_error():
    with pytest.raises(ValueError, match="became NaN or infinite at epoch 3, and without a validation split"):
        fit(0.0, poison_at=2)
    with pytest.raises(ValueError, match="Flow training diverged: .* at epoch 1, and no epoch before it"):
        Flow(epochs=3, learning_rate=1e3, random_state=0).fit(load_digits().data[:200])
