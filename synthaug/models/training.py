"""Fitting a synthaug Keras model: the validation split, tf.data pipeline and early stopping
that every family shares, from arrays or streamed from a ``tf.data.Dataset`` (see
:mod:`synthaug.models.streamed`)."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from synthaug.models.streamed import StreamedData


def validation_size(n: int, validation_fraction: float) -> int:
    """Rows held out for validation: none for fewer than 10 samples."""
    return int(round(validation_fraction * n)) if n >= 10 else 0


def split_indices(n: int, validation_fraction: float, rng: np.random.RandomState):
    """Shuffled (train, validation) indices; no validation split for fewer than 10 samples."""
    n_val = validation_size(n, validation_fraction)
    perm = rng.permutation(n)
    return perm[n_val:], perm[:n_val]


def make_dataset(Z, codes, idx, batch_size: int, shuffle_seed=None) -> tf.data.Dataset:
    """Batches of ``Z[idx]`` (and ``codes[idx]``), reshuffled every epoch when a seed is given."""
    parts = Z[idx] if codes is None else (Z[idx], codes[idx].astype("int32"))
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(idx), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(min(batch_size, len(idx)))


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the end of the first epoch whose loss (or any logged value) is NaN or
    infinite, remembering the epoch; the early-stopping callback then restores the best weights."""

    def __init__(self):
        super().__init__()
        self.epoch, self.names = None, []

    def on_epoch_end(self, epoch, logs=None):
        bad = [name for name, value in (logs or {}).items() if not np.isfinite(float(value))]
        if bad and self.epoch is None:
            self.epoch, self.names = epoch + 1, bad
            self.model.stop_training = True


def fit_model(estimator, model, Z, codes, rng, seed, callbacks=()) -> dict:
    """Fit ``model`` on network-unit data with the estimator's training parameters.

    Uses ``estimator.validation_fraction``, ``batch_size``, ``epochs``, ``patience`` and its
    progress settings; with a validation split, early stopping restores the best weights.
    ``Z`` is an array (with ``codes``) or a :class:`StreamedData`. Returns the history as
    plain floats.
    """
    callbacks = list(callbacks)
    if isinstance(Z, StreamedData):
        train, val = Z.train_validation(estimator.validation_fraction, estimator.batch_size, seed)
        build_batch = Z.head(2)
    else:
        train_idx, val_idx = split_indices(len(Z), estimator.validation_fraction, rng)
        val = make_dataset(Z, codes, val_idx, estimator.batch_size) if len(val_idx) else None
        train = make_dataset(Z, codes, train_idx, estimator.batch_size, seed)
        sample = train_idx[:2]
        build_batch = (Z[sample], None if codes is None else codes[sample].astype("int32"))
    if val is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=estimator.patience, restore_best_weights=True))
    if tf.distribute.has_strategy():
        # Under a tf.distribute strategy Keras builds the model symbolically from the features
        # alone, without the labels a conditional model needs; build it now from a real batch,
        # inside the scope, so every variable is created as the strategy's (mirrored) variable.
        model(build_batch[0] if build_batch[1] is None else build_batch, training=False)
    diverged = StopOnNonFinite()
    progress, keras_verbose = estimator._progress_callbacks(estimator.epochs)
    history = model.fit(train, validation_data=val, epochs=estimator.epochs,
                        callbacks=callbacks + [diverged] + progress, verbose=keras_verbose, shuffle=False)
    if diverged.epoch is not None:
        name, what = type(estimator).__name__, " and ".join(diverged.names)
        if val is None or diverged.epoch == 1:
            kept = ("no epoch before it trained to finite weights" if diverged.epoch == 1 else
                    "without a validation split no earlier weights were kept")
            raise ValueError(f"{name} training diverged: {what} became NaN or infinite at epoch {diverged.epoch}, "
                             f"and {kept}; lower learning_rate (or set validation_fraction > 0)")
        import warnings

        warnings.warn(f"{name} training diverged: {what} became NaN or infinite at epoch {diverged.epoch}; "
                      "training stopped and the weights of the best validation epoch were kept (a lower "
                      "learning_rate may train further)", RuntimeWarning, stacklevel=3)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def batch_mean(values, axis=None):
    """``ops.mean`` that gives 0, not NaN, over no examples: under a ``tf.distribute`` strategy a
    short last batch can leave a replica an empty slice (one example, two replicas), and a NaN
    there would stop training as diverged. Track such means with ``sample_weight=batch_weight(data)``,
    so an empty slice counts for nothing."""
    ops = keras.ops
    total = ops.sum(values, axis=axis)
    count = ops.size(values) if axis is None else ops.shape(values)[axis]
    return total / ops.maximum(ops.cast(count, total.dtype), 1.0)


def batch_weight(data):
    """A batch's weight in the epoch's mean of batch losses: 1, or 0 for a replica's empty slice
    (features, or (features, labels)). Each batch counts once, as Keras' plain mean does."""
    x = data[0] if isinstance(data, (tuple, list)) else data
    return keras.ops.cast(keras.ops.shape(x)[0] > 0, "float32")


class BuiltModelMixin:
    """``MultiWorkerMirroredStrategy`` support for synthaug's Keras models.

    Two steps of Keras 3.15's ``fit`` fail across several workers, for any Keras model:

    - before building a model symbolically it averages one data batch across the replicas
      (``strategy.reduce``), even when the model is built already, and the multi-worker strategy
      cannot reduce a (features, labels) pair. synthaug's models are built before ``fit`` (see
      :func:`fit_model`), so only their optimizer is left to build, which needs no data;
    - it averages the step's logs with ``strategy.reduce("MEAN", v, axis=0)``, which needs an
      axis that a scalar metric lacks: :meth:`step_logs` gives them one in that case.
    """

    def step_logs(self) -> dict:
        """``{name: result}`` of the model's metrics, as a ``train_step``/``test_step`` returns them."""
        logs = {m.name: m.result() for m in self.metrics}
        if _across_workers(self.distribute_strategy):
            logs = {name: tf.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is not None and all(layer.built for layer in self._flatten_layers()):
            with self.distribute_strategy.scope():
                self._symbolic_build(data_batch=())  # only the optimizer (if any) is left to build
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)


def _across_workers(strategy) -> bool:
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return len(strategy.cluster_resolver.cluster_spec().as_dict().get("worker", [])) > 1


def sample_rows(Z, codes, rng, size: int):
    """Up to ``size`` training examples as arrays: a random subset of an array, the first
    ``size`` examples of a stream."""
    if isinstance(Z, StreamedData):
        return Z.head(size)
    idx = rng.choice(len(Z), size=min(len(Z), size), replace=False)
    return Z[idx], None if codes is None else codes[idx].astype("int32")
