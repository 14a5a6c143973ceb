"""Synthetic examples inside TensorFlow input pipelines and Keras models, generated in-graph.

Two ways to mix a fitted synthaug generator's samples into training, both running the
generator's own Keras networks inside TensorFlow graphs, a batch at a time (never a Python call
per example), with TensorFlow's stateless random ops:

- :func:`augment` rewrites a ``tf.data.Dataset``: a share ``ratio`` of its examples is replaced by
  synthetic ones. tf.data runs on the host CPU, in parallel with the training step, so it suits
  CPU training, models whose step is slower than generation, and pipelines shared by several
  models or frameworks; its output is an ordinary dataset (inspect it, cache it, save it).
- :class:`SyntheticMix` is a Keras layer that does the same inside the model's training step
  (identity at inference), so that generation runs on the accelerator beside the model and the
  host CPU does not have to keep up; use it on GPUs/TPUs when the input pipeline is the
  bottleneck, and under ``tf.distribute`` (each replica mixes its own slice of the batch).

Both replace examples rather than add them, so batch sizes, epoch lengths and ``element_spec``
stay as they are. A labelled example is replaced by a synthetic one of the same class (the
class balance of the data is kept) unless ``labels`` asks otherwise. Generated examples carry
no pixel watermark: they never leave the training pipeline.
"""
from __future__ import annotations

import numbers

import keras
import numpy as np
import tensorflow as tf
from sklearn.utils.validation import check_is_fitted

from synthaug.models.streamed import dataset_layout

__all__ = ["augment", "SyntheticMix"]

_LABEL_MODES = ("keep", "prior")


def augment(dataset: tf.data.Dataset, generator, ratio: float = 0.5, labels="keep", seed: int | None = None, *,
            chunk_size: int = 256, precision: str = "float32", jit_compile: bool = False) -> tf.data.Dataset:
    """Replace a share of a dataset's examples by synthetic ones generated in-graph.

    Parameters
    ----------
    dataset : tf.data.Dataset
        Elements are features or ``(features, labels)``, batched or not (e.g. from
        ``keras.utils.image_dataset_from_directory`` or ``Dataset.from_tensor_slices``); one
        example's features must hold as many values as the generator's samples (``(8, 8)`` and
        ``(8, 8, 1)`` are interchangeable). Labels are one value per example (``label_mode="int"``).
        A dataset counts as batched when its labels are 1-D per element, or, without labels, when
        its features' first dimension is unknown (what ``.batch()`` gives), it has 4 dimensions, or
        the pipeline batches with ``drop_remainder=True`` (a known batch size).
    generator : fitted synthaug generator
        A VAE, Flow or GAN (any generator with an in-graph sampler). A labelled dataset needs a
        generator fitted with labels, on the same label values.
    ratio : float, default=0.5
        Probability that an example is replaced (independently per example, so the synthetic
        share of a pass is ``ratio`` within binomial sampling error). Only the replaced examples
        are generated.
    labels : {"keep", "prior"}, label or array-like of labels, default="keep"
        Labels of the synthetic examples. ``"keep"``: each takes the label of the example it
        replaces and is generated for that class (for a dataset without labels, as ``"prior"``).
        ``"prior"``: drawn in the generator's training class balance. Labels: drawn uniformly
        from these classes (e.g. minority classes). The element labels are rewritten to match.
    seed : int or None, default=None
        Same seed, same dataset: each pass draws the replaced positions, labels and samples from
        stateless random ops seeded per batch by ``tf.data.Dataset.random(seed)``, which changes
        from one pass (epoch) to the next in a reproducible way. ``None``: not reproducible.
    chunk_size : int, default=256
        Unbatched datasets are generated for in batches of this many examples (then unbatched).
    precision : {"float32", "mixed_float16", "mixed_bfloat16"}, default="float32"
        Keras dtype policy of the generator's network while sampling (a float16/bfloat16 copy of
        it). For GPUs with tensor cores. On a CPU, float16 can be far slower than float32 (70-600x
        in the README's measurements, even on a chip with FP16 units) and bfloat16 helps only
        where the CPU has bfloat16 units; measure before using either. The Flow samples in
        float32 only.
    jit_compile : bool, default=False
        Compile the per-batch generation with XLA. XLA needs fixed shapes, so each batch then
        has exactly ``round(ratio * batch size)`` synthetic examples (at random positions)
        instead of a binomial count. No consistent gain on a CPU in the benchmark (see the
        README); worth measuring on a GPU.

    Returns
    -------
    tf.data.Dataset
        Same ``element_spec`` as ``dataset``, same number of examples, in the same order.

    Raises
    ------
    TypeError
        If ``generator`` cannot sample in-graph or was fitted on a DataFrame, or the elements are
        not features or (features, labels).
    ValueError
        For a bad ``ratio``, ``labels`` or ``precision``, an example shape that does not match the
        generator, or labels in the dataset with a generator fitted without labels.

    Examples
    --------
    >>> import tensorflow as tf
    >>> from sklearn.datasets import load_digits
    >>> from synthaug import VAE
    >>> from synthaug.integrations.tf_data import augment
    >>> d = load_digits()
    >>> vae = VAE(hidden_units=(32,), epochs=2, random_state=0).fit(d.images, d.target)
    >>> ds = tf.data.Dataset.from_tensor_slices((d.images.astype("float32"), d.target)).batch(64)
    >>> mixed = augment(ds, vae, ratio=0.5, seed=0)
    >>> mixed.element_spec == ds.element_spec
    True
    """
    _check_generator(generator, "augment")
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"dataset must be a tf.data.Dataset; got {type(dataset).__name__}")
    ratio = _check_ratio(ratio)
    if not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    if seed is not None and not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int or None; got {type(seed).__name__}")
    if not isinstance(jit_compile, (bool, np.bool_)):
        raise TypeError(f"jit_compile must be True or False; got {jit_compile!r}")
    generator._sampling_model(precision)  # checks precision for this family
    layout = dataset_layout(dataset)
    _check_shape(layout.sample_shape, generator)
    if layout.labelled and generator.classes_ is None:
        raise ValueError(f"the dataset's elements carry labels, but the {type(generator).__name__} was fitted "
                         "without labels, so synthetic examples would have none; fit it with labels, or drop "
                         "them first (dataset.map(lambda x, y: x))")
    if layout.labelled and generator.classes_ is not None:
        text_labels, text_classes = layout.y_dtype == tf.string, generator.classes_.dtype.kind in "USO"
        if text_labels != text_classes:  # else the lookup fails only when the dataset is iterated
            raise ValueError(f"the dataset's labels are {layout.y_dtype.name}, but the {type(generator).__name__}'s "
                             f"classes are {'text' if text_classes else 'numbers'} "
                             f"({generator.classes_.tolist()[:5]}); give labels of the kind it was fitted on")
    plan = _LabelPlan(generator, labels, layout.labelled)

    def mix(x, y, seed_pair):
        if jit_compile:  # XLA's stateless categorical sampler takes int32 seeds only
            seed_pair = tf.cast(seed_pair % (2**31 - 1), tf.int32)
        return _mix_batch(generator, x, y, seed_pair, ratio, plan, precision, fixed=jit_compile)

    if jit_compile:
        mix = tf.function(mix, jit_compile=True, reduce_retracing=True)

    def per_batch(element, draw):
        x, y = element if layout.labelled else (element, None)
        x, y = mix(x, y, tf.stack([draw, tf.constant(0, tf.int64)]))
        return x if y is None else (x, y)

    batches = layout.batches(dataset, chunk_size)
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    out = tf.data.Dataset.zip((batches, draws)).map(per_batch, num_parallel_calls=tf.data.AUTOTUNE,
                                                     deterministic=True)
    if not layout.batched:
        out = out.unbatch()  # loses the length, which the mix keeps: say it again
        length = int(dataset.cardinality())
        if length >= 0 or length == tf.data.INFINITE_CARDINALITY:
            out = out.apply(tf.data.experimental.assert_cardinality(length))
    return out.prefetch(tf.data.AUTOTUNE)


@keras.saving.register_keras_serializable(package="synthaug")
class SyntheticMix(keras.layers.Layer):
    """Keras layer that replaces a share of each training batch by synthetic examples.

    Active in training only (``model.fit``); at inference (``predict``, ``evaluate``) it passes
    its input through unchanged. The generator's network runs inside the model's training step,
    on the model's device (GPU/TPU), and under the model's ``tf.distribute`` strategy each
    replica mixes its own part of the batch. Put it first, on the raw features in the units the
    generator was fitted on (before any rescaling layer). The generator's weights are not part
    of the model: they are read, never trained (no gradient flows into the samples).

    Parameters
    ----------
    generator : fitted synthaug generator or None
        VAE, Flow or GAN. ``None`` (what a model saved with this layer loads with: the generator
        is not saved with it) makes an identity layer that refuses to train.
    ratio : float, default=0.5
        Share of each training batch that is replaced (rounded to whole examples).
    seed : int or None, default=None
        Seeds the layer's random stream (which positions, which samples).
    precision : {"float32", "mixed_float16", "mixed_bfloat16"}, default="float32"
        Keras dtype policy of the generator's network while sampling; see :func:`augment`.

    Notes
    -----
    Call it on the features alone, ``mix(x)``, with an unconditional generator; with a conditional
    one pass the labels too, ``mix([x, y])``, and each replaced example is drawn for its own
    label, so the training targets stay right. To give the model the labels as an input, build
    the training model from shared layers and a separate inference model without them::

        images = keras.Input((8, 8)); labels = keras.Input((), dtype="int32")
        body = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10)])
        train_model = keras.Model([images, labels], body(SyntheticMix(vae, 0.5)([images, labels])))
        model = keras.Model(images, body(images))   # shares body's weights, for predict
        train_model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        train_model.fit(ds.map(lambda x, y: ((x, y), y)))

    Each training batch gets exactly ``round(ratio * batch size)`` synthetic examples at random
    positions, and only those are generated; the count is fixed per batch shape, so the step
    compiles with XLA (as Keras does by default on GPUs).
    """

    def __init__(self, generator=None, ratio: float = 0.5, seed: int | None = None, precision: str = "float32",
                 **kwargs):
        super().__init__(**kwargs)
        self.ratio = _check_ratio(ratio)
        self.seed = seed
        self.precision = precision
        if generator is not None:
            _check_generator(generator, "SyntheticMix")
            generator._sampling_model(precision)
        # A plain attribute, not a tracked one: the generator's weights are not this model's.
        object.__setattr__(self, "generator", generator)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=None):
        x, labels = (inputs[0], inputs[1]) if isinstance(inputs, (list, tuple)) else (inputs, None)
        if not training or self.ratio == 0.0:
            return x
        generator = self.generator
        if generator is None:
            raise ValueError("SyntheticMix has no generator (a model loaded from a file keeps the layer as an "
                             "identity for inference); create the layer with a fitted generator to train")
        if generator.classes_ is not None and labels is None:
            raise ValueError(f"the {type(generator).__name__} is class-conditional: call the layer on "
                             "[features, labels] so that each synthetic example is drawn for its label")
        _check_shape(tuple(x.shape[1:]), generator)
        plan = _LabelPlan(generator, "keep", labels is not None)
        seed = keras.random.randint((2,), 0, 2**31 - 1, seed=self.seed_generator, dtype="int32")
        mixed, _ = _mix_batch(generator, x, labels, seed, self.ratio, plan, self.precision, fixed=True)
        return tf.stop_gradient(mixed)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            return tuple(input_shape[0])
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio, "seed": self.seed, "precision": self.precision}


# -- shared pieces ----------------------------------------------------------------------------------
def _check_generator(generator, who: str) -> None:
    check_is_fitted(generator)
    if not hasattr(generator, "_sample_network_graph"):
        raise TypeError(f"{who} needs a generator that samples in-graph; {type(generator).__name__} has no "
                        "in-graph sampler (_sample_network_graph). Use generate() and mix its numpy samples in "
                        "yourself, or a VAE, Flow or GAN")
    if getattr(generator, "tabular_encoder_", None) is not None:
        raise TypeError(f"{who}: the {type(generator).__name__} was fitted on a DataFrame, whose columns a tensor "
                        "does not carry; fit it on the numeric array the dataset holds")


def _check_ratio(ratio) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be a number in [0, 1]; got {ratio!r}")
    return float(ratio)


def _check_shape(sample_shape, generator) -> None:
    if None in sample_shape or int(np.prod(sample_shape)) != int(np.prod(generator.input_shape_)):
        raise ValueError(f"examples of shape {tuple(sample_shape)} do not match the {type(generator).__name__}'s "
                         f"samples of shape {tuple(generator.input_shape_)}")


class _LabelPlan:
    """Where the label codes of synthetic examples come from, and the label values they give back."""

    def __init__(self, generator, labels, labelled: bool):
        self.generator = generator
        self.rewrite = False
        if generator.classes_ is None:
            self.mode = None
            return
        if isinstance(labels, str) and labels in _LABEL_MODES:
            self.mode = "prior" if labels == "keep" and not labelled else labels
        else:
            pool = np.atleast_1d(np.asarray(labels))
            usage = (f"labels must be 'keep', 'prior' or labels seen in fit "
                     f"({generator.classes_.tolist()[:20]}); got {labels!r}")
            if pool.ndim != 1 or not pool.size:
                raise ValueError(usage)
            try:  # matched as generate matches them: '10' is not 10
                codes = generator._label_codes(pool, len(pool), np.random.RandomState(0))
            except ValueError as exc:
                raise ValueError(f"{usage} ({exc})") from None
            self.mode, self.pool = "pool", codes.astype(np.int32)
        self.rewrite = labelled and self.mode != "keep"

    def codes(self, k, real_labels, seed):
        if self.mode is None:
            return None
        if self.mode == "keep":
            return self.generator._codes_graph(real_labels)
        if self.mode == "prior":
            return self.generator._prior_codes_graph(k, seed)
        pick = tf.random.stateless_uniform(tf.reshape(k, (1,)), seed, 0, len(self.pool), dtype=tf.int32)
        return tf.gather(tf.constant(self.pool), pick)

    def values(self, codes, dtype):
        classes = self.generator.classes_
        if dtype == tf.string:
            return tf.gather(tf.constant([str(c).encode() for c in classes]), codes)
        return tf.cast(tf.gather(tf.constant(classes), codes), dtype)


def _as_examples(samples, like):
    """Generated float32 samples → the example shape and dtype of the batch ``like``."""
    samples = tf.reshape(samples, tf.concat([tf.shape(samples)[:1], tf.shape(like)[1:]], 0))
    if like.dtype.is_integer:
        samples = tf.clip_by_value(tf.round(samples), float(like.dtype.min), float(like.dtype.max))
    return tf.cast(samples, like.dtype)


def _mix_batch(generator, x, y, seed, ratio, plan: _LabelPlan, precision, *, fixed: bool):
    """One batch with a share ``ratio`` of its examples replaced by synthetic ones.

    ``fixed=False``: each example is replaced with probability ``ratio`` (a binomial count per
    batch). ``fixed=True``: exactly ``round(ratio * batch size)`` random examples are, a count
    that XLA knows when it compiles for a batch shape. Either way only the replaced examples are
    generated. Returns the new (x, y); ``y`` is ``None`` for unlabelled batches.
    """
    seed_mask, seed_labels, seed_samples = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    draws = tf.random.stateless_uniform(tf.shape(x)[:1], seed_mask)
    if fixed:
        k = tf.cast(tf.round(ratio * tf.cast(tf.shape(x)[0], tf.float32)), tf.int32)
        index = tf.expand_dims(tf.math.top_k(draws, k, sorted=False).indices, 1)
    else:
        index = tf.where(draws < ratio)
        k = tf.shape(index)[0]
    rows = None if y is None else tf.gather_nd(y, index)
    codes = plan.codes(k, rows, seed_labels)
    synthetic = _as_examples(generator._sample_graph(k, codes, seed_samples, precision=precision), x)
    x = tf.tensor_scatter_nd_update(x, index, synthetic)
    if y is not None and plan.rewrite:
        y = tf.tensor_scatter_nd_update(y, index, plan.values(codes, y.dtype))
    return x, y
