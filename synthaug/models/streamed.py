"""Training data streamed from a ``tf.data.Dataset``: its layout, one statistics pass, and the
network-unit stream that ``fit`` reads on every epoch (never held in memory)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

# A streamed example's validation membership comes from a hash of its features, in buckets of
# 1/N_SPLIT_BUCKETS: the split is the same on every pass, whatever order the dataset yields.
N_SPLIT_BUCKETS = 1000
_STATISTICS_BATCH = 1024  # unbatched datasets are read in batches of this many examples
_SHUFFLE_BUFFER = 10_000


@dataclass(frozen=True)
class DatasetLayout:
    """How a ``tf.data.Dataset`` holds its examples: batched or not, with labels or not.

    A dataset counts as batched when its labels have one dimension per element, or, without
    labels, when its features have an unknown first dimension (what ``.batch()`` gives) or four
    dimensions. ``sample_shape`` is the shape of one example's features.
    """

    batched: bool
    labelled: bool
    sample_shape: tuple
    x_dtype: tf.DType
    y_dtype: tf.DType | None

    def batches(self, dataset: tf.data.Dataset, size: int = _STATISTICS_BATCH) -> tf.data.Dataset:
        """The dataset as batches (an unbatched one is batched by ``size``)."""
        return dataset if self.batched else dataset.batch(size)

    def statistics_batches(self, dataset):
        """Batches of (features, labels or None-stand-in, split bucket) for the statistics pass."""
        def with_bucket(x, y=None):
            return x, (tf.zeros((0,), tf.int32) if y is None else y), split_bucket(x)

        return self.batches(dataset).map(with_bucket, num_parallel_calls=tf.data.AUTOTUNE)


# Steps that keep a dataset's elements whole (they may change values, not what an element is).
_ELEMENT_PRESERVING = ("Prefetch", "Map", "Cache", "Shuffle", "Repeat", "Take", "Skip", "Filter", "Options",
                       "AssertCardinality", "Shard", "IgnoreErrors", "Snapshot")
_ELEMENT_CHANGING = ("FlatMap", "Interleave", "Unbatch", "Window", "Scan", "GroupBy", "Rebatch", "Zip",
                     "Concatenate")


def _batched_by_pipeline(dataset, leading: int) -> bool:
    """Whether the pipeline ends in ``batch(leading, drop_remainder=True)``, followed only by
    steps that keep elements whole: such a batch has a known size, so (50, 8, 8) could be 50
    digits or one 50×8 image of 8 channels, and only the pipeline tells them apart.

    Follows tf.data's private ``_input_dataset`` links; False wherever the chain is not known.
    """
    for _ in range(1000):
        name = type(dataset).__name__
        if any(step in name for step in _ELEMENT_CHANGING):
            return False
        if "Batch" in name:  # _BatchDataset, _PaddedBatchDataset, _ParallelBatchDataset
            try:
                return bool(dataset._drop_remainder) and int(dataset._batch_size) == leading
            except (AttributeError, TypeError, ValueError):
                return False
        if not any(step in name for step in _ELEMENT_PRESERVING):
            return False
        dataset = getattr(dataset, "_input_dataset", None)
        if dataset is None:
            return False
    return False


def dataset_layout(dataset) -> DatasetLayout:
    """The :class:`DatasetLayout` of ``dataset``, or a ``TypeError``/``ValueError`` saying what is wrong."""
    spec = dataset.element_spec
    if isinstance(spec, tf.TensorSpec):
        x_spec, y_spec = spec, None
    elif isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(s, tf.TensorSpec) for s in spec):
        x_spec, y_spec = spec
    else:
        raise TypeError("dataset elements must be a features tensor or a (features, labels) pair of tensors; "
                        f"got element_spec {spec}")
    if not (x_spec.dtype.is_floating or x_spec.dtype.is_integer):
        raise TypeError(f"dataset features must be numeric (integer or float); got dtype {x_spec.dtype.name}")
    shape = x_spec.shape
    if shape.rank is None:
        raise ValueError("dataset features have unknown rank; give them a static shape (e.g. with ensure_shape)")
    if y_spec is not None:
        if y_spec.shape.rank not in (0, 1):
            raise ValueError(
                f"dataset labels must be one integer or string per example; got label shape {y_spec.shape} "
                "(one-hot labels? use image_dataset_from_directory(label_mode='int'))")
        batched = y_spec.shape.rank == 1
    else:
        batched = shape.rank == 4 or (shape.rank >= 2 and shape[0] is None) or (
            shape.rank >= 2 and _batched_by_pipeline(dataset, shape[0]))
    sample = shape[1:] if batched else shape
    if not 1 <= sample.rank <= 3 or not sample.is_fully_defined():
        raise ValueError(
            f"dataset examples must be tabular (d,) or images (H, W) / (H, W, C) of one fixed size; got example "
            f"shape {sample} (resize images to one size, e.g. image_dataset_from_directory(image_size=...))")
    return DatasetLayout(batched, y_spec is not None, tuple(int(s) for s in sample), x_spec.dtype,
                         None if y_spec is None else y_spec.dtype)


def split_bucket(x):
    """Per example of a batch: a bucket in [0, N_SPLIT_BUCKETS) from a hash of its features."""
    fp = tf.cast(tf.fingerprint(x), tf.int32)  # (B, 8) bytes of each row's 64-bit FarmHash
    return (fp[:, 0] * 256 + fp[:, 1]) * N_SPLIT_BUCKETS // 65536


class StreamStatistics:
    """What ``_fit_data`` learns from an array, accumulated over a dataset one batch at a time.

    Mean and variance are merged per batch (Chan et al.'s parallel update), per feature for
    tabular data and over all values for images; the fingerprint sums the SHA-256 of every
    example (with its label) modulo 2**256, so it does not depend on the order of the examples
    (``image_dataset_from_directory`` reshuffles them on every pass).
    """

    def __init__(self, layout: DatasetLayout):
        self.layout = layout
        self.per_feature = len(layout.sample_shape) == 1
        self.n = self.count = 0
        self.mean = self.m2 = self.min = self.max = None
        self.is_integer = True
        self.class_counts: dict = {}
        self.digest_sum = 0
        self.bucket_counts = np.zeros(N_SPLIT_BUCKETS, dtype=np.int64)

    def run(self, dataset) -> "StreamStatistics":
        for x, labels, buckets in self.layout.statistics_batches(dataset).as_numpy_iterator():
            self.update(x, labels if self.layout.labelled else None, buckets)
        if self.n < 2:
            raise ValueError(f"the dataset holds {self.n} example(s); fit needs at least 2")
        return self

    def update(self, x, labels, buckets) -> None:
        rows = np.ascontiguousarray(np.asarray(x).reshape(len(x), -1))
        flat = rows.astype(np.float64)
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            raise ValueError(f"the dataset contains NaN or inf (first: example {self.n + int(np.argmax(bad))}); "
                             "remove or impute them before fit")
        values = flat if self.per_feature else flat.reshape(-1, 1)
        mean = values.mean(axis=0)
        m2, count = ((values - mean) ** 2).sum(axis=0), len(values)
        if self.count == 0:
            self.mean, self.m2, self.min, self.max = mean, m2, values.min(axis=0), values.max(axis=0)
        else:
            total = self.count + count
            delta = mean - self.mean
            self.mean = self.mean + delta * (count / total)
            self.m2 = self.m2 + m2 + delta ** 2 * (self.count * count / total)
            self.min, self.max = np.minimum(self.min, values.min(axis=0)), np.maximum(self.max, values.max(axis=0))
        self.count += count
        self.is_integer = self.is_integer and bool(np.all(np.mod(flat, 1) == 0))
        if labels is not None:
            for label, k in zip(*np.unique(labels, return_counts=True)):
                self.class_counts[label] = self.class_counts.get(label, 0) + int(k)
        self.bucket_counts += np.bincount(buckets, minlength=N_SPLIT_BUCKETS)
        for i, row in enumerate(rows):
            digest = hashlib.sha256(row.data)
            if labels is not None:
                digest.update(repr(labels[i]).encode())
            self.digest_sum = (self.digest_sum + int.from_bytes(digest.digest(), "big")) % 2**256
        self.n += len(rows)

    def std(self):
        return np.sqrt(self.m2 / self.count)

    def per_dataset(self, a):
        """Per-feature statistics as they are (tabular), the single global value as a 0-d array (images)."""
        return np.asarray(a if self.per_feature else a[0], dtype=np.float64)

    def fingerprint(self) -> str:
        digest = hashlib.sha256(f"tf.data:{self.n}:{self.layout.x_dtype.name}{self.layout.sample_shape}".encode())
        digest.update(self.digest_sum.to_bytes(32, "big"))
        return "sha256:" + digest.hexdigest()

    def classes(self):
        """(classes_, class_prior_) from the label counts; byte strings come back as str."""
        labels = sorted(self.class_counts)
        counts = np.asarray([self.class_counts[c] for c in labels], dtype=np.float64)
        if labels and isinstance(labels[0], bytes):
            classes = np.asarray([c.decode() for c in labels])
        else:
            classes = np.asarray(labels, dtype=self.layout.y_dtype.as_numpy_dtype)
        return classes, counts / counts.sum()


class StreamedLabels:
    """Stands in for the label codes of a :class:`StreamedData`: they travel with the features."""


class StreamedData:
    """Training data read from a ``tf.data.Dataset`` on every pass, in network units, in-graph.

    Takes the place of the network-unit array ``Z`` in ``fit``: it has ``len`` and ``shape``
    ``(n, D)``; :meth:`batches` gives the training stream, mapped by the estimator's
    ``_to_network_graph`` and ``_codes_graph``.
    """

    def __init__(self, dataset, layout: DatasetLayout, estimator, n: int, bucket_counts):
        self.dataset = dataset
        self.layout = layout
        self.n = int(n)
        self.shape = (self.n, int(np.prod(layout.sample_shape)))
        self.bucket_counts = np.asarray(bucket_counts)
        self._to_network = estimator._to_network_graph
        self._to_codes = estimator._codes_graph if layout.labelled else None

    def __len__(self) -> int:
        return self.n

    def network_units(self, part: str | None = None, validation_fraction: float = 0.0) -> tf.data.Dataset:
        """Unbatched examples ``z`` or ``(z, code)``; ``part`` keeps ``"train"`` or ``"validation"``."""
        cut = int(round(validation_fraction * N_SPLIT_BUCKETS))
        to_network, to_codes = self._to_network, self._to_codes

        def convert(x, y=None):
            out = [to_network(x)] + ([] if to_codes is None else [to_codes(y)])
            if part is not None:
                keep = split_bucket(x) < cut
                out = [tf.boolean_mask(t, keep if part == "validation" else ~keep) for t in out]
            return out[0] if len(out) == 1 else tuple(out)

        return self.layout.batches(self.dataset).map(convert, num_parallel_calls=tf.data.AUTOTUNE).unbatch()

    def batches(self, batch_size: int, part=None, validation_fraction: float = 0.0, shuffle_seed=None,
                repeat: bool = False, drop_remainder: bool = False) -> tf.data.Dataset:
        ds = self.network_units(part, validation_fraction)
        if shuffle_seed is not None:
            ds = ds.shuffle(min(self.n, _SHUFFLE_BUFFER), seed=shuffle_seed, reshuffle_each_iteration=True)
        if repeat:
            return ds.repeat().batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
        cut = int(round(validation_fraction * N_SPLIT_BUCKETS))
        n = {None: self.n, "validation": self.bucket_counts[:cut].sum(), "train": self.bucket_counts[cut:].sum()}[part]
        # The count is known from the statistics pass: telling tf.data lets Keras size its epochs.
        n_batches = n // batch_size if drop_remainder else -(-n // batch_size)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        return ds.apply(tf.data.experimental.assert_cardinality(int(n_batches))).prefetch(tf.data.AUTOTUNE)

    def train_validation(self, validation_fraction: float, batch_size: int, seed):
        """(training batches, validation batches or None), split by feature hash as ``split_indices``
        would by index: no validation for fewer than 10 examples or an empty validation share."""
        cut = int(round(validation_fraction * N_SPLIT_BUCKETS))
        if self.n < 10 or self.bucket_counts[:cut].sum() == 0 or self.bucket_counts[cut:].sum() == 0:
            return self.batches(batch_size, shuffle_seed=seed), None
        return (self.batches(batch_size, "train", validation_fraction, shuffle_seed=seed),
                self.batches(batch_size, "validation", validation_fraction))

    def head(self, size: int):
        """The first ``size`` examples as arrays (network units, int32 codes or ``None``)."""
        batch = next(iter(self.network_units().batch(size)))
        if self._to_codes is None:
            return batch.numpy(), None
        return batch[0].numpy(), batch[1].numpy()
