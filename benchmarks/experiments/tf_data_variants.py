"""Experiments behind the README's tf.data "where the cost goes" and "tried, no gain" bullets.

1. Cost: the default VAE's in-graph sampler and decoder as ``tf.function``s (64 samples; and per
   64 samples when 512 are drawn per call), mean of 300 calls.
2. Pipeline variants, each iterated alone (ms per batch of 128) and under ``model.fit`` of
   benchmarks/tf_data.py's classifier with its step timer (median ratio to the plain fit over
   ``--runs``, configurations taking turns): ``augment`` as shipped; generation for 8 batches in
   one call (padded_batch, mix, unbatch, slice); a sequential map with a 2-batch prefetch, with
   and without autotune off and a private one-thread pool; and two controls without generation:
   the same zip-with-seeds and parallel map returning the batch unchanged ("identity map"), and
   ``augment(ratio=0)`` (every op of the mix, zero examples generated).

Speed does not depend on training, so the VAE is fitted for 5 epochs only. None of the variants
is shipped (the README says why). Uses synthaug's private ``_mix_batch``/``_LabelPlan``.
``--vae-params JSON`` changes the VAE (e.g. a cheaper one); ``--cost-only`` stops after part 1.
Usage: python benchmarks/experiments/tf_data_variants.py [--data digits|faces] [--runs 5]
       [--vae-params JSON] [--cost-only]
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_data as bench  # noqa: E402
from synthaug import VAE  # noqa: E402
from synthaug.integrations import tf_data as T  # noqa: E402


def grouped(dataset, generator, ratio, seed, group):
    """augment(), but generating for ``group`` batches in one call."""
    plan = T._LabelPlan(generator, "keep", True)
    spec = dataset.element_spec
    groups = dataset.map(lambda x, y: (x, y, tf.shape(x)[0])).padded_batch(group)

    def mix(x, y, sizes, draw):
        n_batches, longest = tf.shape(x)[0], tf.shape(x)[1]
        flat_x = tf.reshape(x, tf.concat([[n_batches * longest], tf.shape(x)[2:]], 0))
        valid = tf.reshape(tf.sequence_mask(sizes, longest), [-1])
        seed_mask, seed_labels, seed_samples = tf.unstack(
            tf.random.experimental.stateless_split(tf.stack([draw, tf.constant(0, tf.int64)]), 3))
        index = tf.where((tf.random.stateless_uniform(tf.shape(flat_x)[:1], seed_mask) < ratio) & valid)
        codes = plan.codes(tf.shape(index)[0], tf.gather_nd(tf.reshape(y, [-1]), index), seed_labels)
        synthetic = T._as_examples(generator._sample_graph(tf.shape(index)[0], codes, seed_samples), flat_x)
        return tf.reshape(tf.tensor_scatter_nd_update(flat_x, index, synthetic), tf.shape(x)), y, sizes

    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    out = tf.data.Dataset.zip((groups, draws)).map(lambda e, d: mix(*e, d), num_parallel_calls=tf.data.AUTOTUNE)
    out = out.unbatch().map(lambda x, y, s: (tf.ensure_shape(x[:s], spec[0].shape), tf.ensure_shape(y[:s], spec[1].shape)))
    return out.prefetch(tf.data.AUTOTUNE)


def sequential(dataset, generator, ratio, seed, private_pool=False):
    """augment(), but one map call at a time and a 2-batch prefetch."""
    plan = T._LabelPlan(generator, "keep", True)

    def per_batch(element, draw):
        return T._mix_batch(generator, *element, tf.stack([draw, tf.constant(0, tf.int64)]), ratio, plan,
                            "float32", fixed=False)

    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    out = tf.data.Dataset.zip((dataset, draws)).map(per_batch).prefetch(2)
    if private_pool:
        options = tf.data.Options()
        options.autotune.enabled = False
        options.threading.private_threadpool_size = 1
        out = out.with_options(options)
    return out


def mean_ms(fn, calls=300):
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        result = fn()
    result.numpy()
    return (time.perf_counter() - start) / calls * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("digits", "faces"), default="digits")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--vae-params", type=json.loads, default={}, help="JSON of VAE parameters")
    parser.add_argument("--cost-only", action="store_true", help="only time the sampler and decoder")
    args = parser.parse_args()
    faces = args.data == "faces"
    X, X_test, y, y_test = bench.faces_split() if faces else bench.digits_split()
    vae = VAE(decoder_output="mean", epochs=5, random_state=0, **args.vae_params).fit(X, y)

    for n in (64, 512):
        codes = tf.constant(np.arange(n) % len(vae.classes_), tf.int32)
        sampler = tf.function(lambda: vae._sample_graph(n, codes, tf.constant([1, 2])))
        print(f"in-graph sampler, {n} per call: {mean_ms(sampler, 100) * 64 / n:.2f} ms per 64 samples")
    decode = tf.function(lambda: vae.model_.decode(tf.random.stateless_normal((64, vae.latent_dim), [1, 2]),
                                                   tf.constant(np.arange(64) % len(vae.classes_), tf.int32)))
    print(f"decoder alone, 64 samples: {mean_ms(decode):.2f} ms")
    if args.cost_only:
        return

    base = bench.training_batches(X, y)
    def identity_map():
        draws = tf.data.Dataset.random(seed=0, rerandomize_each_iteration=True)
        return tf.data.Dataset.zip((base, draws)).map(lambda e, d: e, num_parallel_calls=tf.data.AUTOTUNE,
                                                       deterministic=True).prefetch(tf.data.AUTOTUNE)

    def threaded(intra_op=None, pool=None):
        options = tf.data.Options()
        if intra_op is not None:
            options.threading.max_intra_op_parallelism = intra_op
        if pool is not None:
            options.threading.private_threadpool_size = pool
        return T.augment(base, vae, bench.RATIO, seed=0).with_options(options)

    variants = {"plain": lambda: base, "augment": lambda: T.augment(base, vae, bench.RATIO, seed=0),
                "identity map": identity_map, "augment, ratio 0": lambda: T.augment(base, vae, 0.0, seed=0),
                "augment, intra-op 1": lambda: threaded(intra_op=1),
                "augment, pool 1": lambda: threaded(pool=1),
                "augment, pool 2, intra-op 1": lambda: threaded(intra_op=1, pool=2),
                "grouped x8": lambda: grouped(base, vae, bench.RATIO, 0, 8),
                "sequential": lambda: sequential(base, vae, bench.RATIO, 0),
                "sequential, private pool": lambda: sequential(base, vae, bench.RATIO, 0, private_pool=True)}
    for name, make in variants.items():
        batches = make().take(400)
        for _ in batches.take(3):
            pass
        start = time.perf_counter()
        count = sum(1 for _ in batches)
        print(f"pipeline alone, {name}: {(time.perf_counter() - start) / count * 1e3:.2f} ms per batch")

    net = dict(shape=tuple(X.shape[1:]), n_classes=len(np.unique(y)), scale=1.0 if faces else 1 / 16)
    rates = {name: [] for name in variants}
    for run in range(args.runs):
        for name, make in variants.items():
            keras.utils.set_random_seed(run)
            train, _ = bench.classifier(**net)
            timer = bench._StepTimer().callback
            data = make().map(lambda x, t: ((x, t), t)).prefetch(tf.data.AUTOTUNE)
            train.fit(data, epochs=4, steps_per_epoch=40, callbacks=[timer], verbose=0)
            rates[name].append(timer.rate)
        print(f"run {run}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()) + " steps/s", flush=True)
    for name in variants:
        ratios = [r / p for r, p in zip(rates[name], rates["plain"])]
        print(f"fit, {name}: median ratio to plain {statistics.median(ratios):.3f} "
              f"({', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
