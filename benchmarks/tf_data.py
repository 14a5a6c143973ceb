"""tf.data integration: training speed with synthetic examples mixed in, in-graph sampling speed
(XLA, mixed precision) and one- vs two-device MirroredStrategy loss curves.

Rows
----
- fit speed: ``model.fit`` of a small CNN classifier (two 3x3 convolutions, a dense layer) on the
  digits protocol training split (``train_test_split(images, target, test_size=0.25,
  random_state=0, stratify=target)``), batches of 128, 40 steps per epoch; steps/s over epochs
  2-4 (epoch 1 traces). Plain dataset against ``augment(ratio=0.5)`` (tf.data, host CPU),
  ``augment(ratio=0.5, jit_compile=True)`` and a ``SyntheticMix(ratio=0.5)`` layer in the model.
  The configurations take turns within each run (the machine is shared; turns spread its load
  over all of them) and the speed ratio is the median over runs of each run's ratio to the plain
  fit. Test accuracy of each classifier on the held-out split is printed beside it.
  Generator: ``VAE(decoder_output="mean", epochs=100, random_state=0)`` (the default
  convolutional VAE, early stopping), fitted on the same training split.
- fit speed on faces (skip with ``--skip-faces``): the same on scikit-image's ``lfw_subset``
  (25x25, face / non-face; ``train_test_split(test_size=0.25, random_state=0, stratify=y)``, 150
  training images), the same classifier without rescaling and with 2 outputs, a VAE fitted alike.
- sampling speed: ``_sample_graph`` (the in-graph sampler that augment and SyntheticMix call)
  as a ``tf.function``, 1,024 samples per call, float32 vs XLA (``jit_compile=True``) vs
  ``mixed_float16`` / ``mixed_bfloat16`` networks, for the VAE, a GAN (dense networks, the
  default for 8x8) and a RealNVP Flow; samples/s, median of ``--runs`` timings of 20 calls.
  Speed does not depend on training, so the GAN and Flow are fitted for 5 epochs only.
- pipeline speed: examples/s of iterating ``augment(ratio=0.5)`` alone (no model).
- distributed: a subprocess with two logical CPU devices fits the same VAE (digits training
  split, 15 epochs, no validation split) without a strategy (seeds 0 and 1) and under
  ``MirroredStrategy`` over both devices (seed 0); per-epoch loss curves, and the largest
  relative gap between the two-device and one-device curves against the seed-to-seed gap.

- compact generator (with ``--compact-vae-params JSON``): one more fit-speed row per dataset,
  ``augment_compact``, the same ``augment`` with a second VAE of the given (cheaper) parameters,
  fitted alike, taking turns with the other configurations.
- pose generator (with ``--pose``): one more fit-speed row per dataset, ``augment_pose``, the same
  ``augment`` with a ``PoseModel()`` (defaults) fitted on the same training split: its sampler is
  one bilinear warp of a training image per sample, far less arithmetic than a decoder.

Usage: python benchmarks/tf_data.py [--runs 3] [--quick] [--placement] [--skip-distributed] [--skip-faces]
       [--skip-sampling] [--compact-vae-params JSON] [--pose] [--out benchmarks/results-tf_data.json]
``--quick`` (a few minutes) fits the generators briefly and runs fewer steps; ``--placement``
checks that the generator's ops run on the GPU (and says "no GPU" without one).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from _arguments import positive_int

BATCH = 128
RATIO = 0.5


def digits_split():
    d = load_digits()
    return train_test_split(d.images.astype("float32"), d.target, test_size=0.25, random_state=0,
                            stratify=d.target)


def faces_split():
    """scikit-image's lfw_subset: 200 images of 25×25 in [0, 1], 100 faces (label 0) then 100 non-faces."""
    from skimage.data import lfw_subset

    X = lfw_subset().astype("float32")
    y = np.r_[np.zeros(100), np.ones(100)].astype("int64")
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def fit_generators(X, y, quick: bool) -> dict:
    from synthaug import GAN, VAE, Flow

    started = time.perf_counter()
    vae = VAE(decoder_output="mean", epochs=5 if quick else 100, random_state=0).fit(X, y)
    vae_s = time.perf_counter() - started
    gan = GAN(epochs=2 if quick else 5, random_state=0).fit(X, y)
    # RealNVP, as this row has always measured (flow_type="auto" would pick MAF for flat vectors,
    # whose sampling is sequential over the 64 dimensions: about 450 samples/s).
    flow = Flow(flow_type="realnvp", epochs=2 if quick else 5, random_state=0).fit(X.reshape(len(X), -1), y)
    print(f"fitted: VAE {len(vae.history_['loss'])} epochs in {vae_s:.1f} s; GAN, Flow briefly")
    return {"VAE": vae, "GAN": gan, "Flow": flow}


def compact_vae(X, y, params, quick: bool, results: dict, key: str):
    """The optional cheaper VAE of the ``augment_compact`` row, fitted like the default one."""
    if params is None:
        return None
    from synthaug import VAE

    vae = VAE(decoder_output="mean", epochs=5 if quick else 100, random_state=0, **params).fit(X, y)
    results[key] = {"params": params, "epochs": len(vae.history_["loss"])}
    print(f"fitted: compact VAE {params}, {len(vae.history_['loss'])} epochs")
    return vae


# -- fit speed ----------------------------------------------------------------------------------------
class _StepTimer:
    def __init__(self):
        import keras

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(inner, epoch, logs=None):
                if epoch == 1:
                    inner.start, inner.steps = time.perf_counter(), 0

            def on_train_batch_end(inner, batch, logs=None):
                if hasattr(inner, "steps"):
                    inner.steps += 1

            def on_train_end(inner, logs=None):
                inner.rate = inner.steps / (time.perf_counter() - inner.start)

        self.callback = Timer()


def classifier(mix=None, shape=(8, 8), n_classes=10, scale=1 / 16):
    import keras

    images, labels = keras.Input(shape), keras.Input((), dtype="int32")
    body = keras.Sequential([
        keras.layers.Reshape(shape + (1,)), keras.layers.Rescaling(scale),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(n_classes),
    ])
    x = images if mix is None else mix([images, labels])
    train = keras.Model([images, labels], body(x))
    train.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return train, keras.Model(images, body(images))


def training_batches(X, y):
    """The fit-speed rows' input: shuffled (seed 0), repeated batches of (features, int32 labels)."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((X, y.astype("int32"))).shuffle(len(X), seed=0).repeat().batch(BATCH)


def pose_model(X, y, enabled: bool, results: dict, key: str):
    """The optional PoseModel of the ``augment_pose`` row (defaults), fitted on the training split."""
    if not enabled:
        return None
    from synthaug import PoseModel

    started = time.perf_counter()
    pose = PoseModel(random_state=0).fit(X, y)
    results[key] = {"fit_s": time.perf_counter() - started, "alignment_error": pose.history_["alignment_error"]}
    print(f"fitted: PoseModel in {results[key]['fit_s']:.1f} s")
    return pose


def fit_speed(vae, X, y, X_test, y_test, runs: int, steps: int, scale: float = 1 / 16, extra=None) -> dict:
    """Steps/s of the plain fit and of each augmented one; ``extra`` maps more row names to generators
    for ``augment`` (e.g. ``{"augment_compact": compact_vae}``)."""
    import keras
    import tensorflow as tf

    from synthaug.integrations.tf_data import SyntheticMix, augment

    base = training_batches(X, y)
    net = dict(shape=tuple(X.shape[1:]), n_classes=len(np.unique(y)), scale=scale)

    def as_inputs(ds):
        return ds.map(lambda x, t: ((x, t), t)).prefetch(tf.data.AUTOTUNE)

    configs = {
        "plain": lambda: (classifier(**net), as_inputs(base)),
        "augment": lambda: (classifier(**net), as_inputs(augment(base, vae, ratio=RATIO, seed=0))),
        "augment_xla": lambda: (classifier(**net),
                                as_inputs(augment(base, vae, ratio=RATIO, seed=0, jit_compile=True))),
        "synthetic_mix": lambda: (classifier(SyntheticMix(vae, RATIO, seed=0), **net), as_inputs(base)),
    }
    for name, generator in (extra or {}).items():
        if generator is not None:
            configs[name] = (lambda g=generator: (classifier(**net),
                                                   as_inputs(augment(base, g, ratio=RATIO, seed=0))))
    rates = {name: [] for name in configs}
    accuracy = {name: [] for name in configs}
    for run in range(runs):
        for name, make in configs.items():
            keras.utils.set_random_seed(run)
            (train, model), data = make()
            timer = _StepTimer().callback
            train.fit(data, epochs=4, steps_per_epoch=steps, callbacks=[timer], verbose=0)
            rates[name].append(timer.rate)
            accuracy[name].append(float(np.mean(model.predict(X_test, verbose=0).argmax(1) == y_test)))
            print(f"  run {run} {name:14s} {timer.rate:7.1f} steps/s  test accuracy {accuracy[name][-1]:.4f}")
    out = {}
    for name in configs:
        ratios = [r / p for r, p in zip(rates[name], rates["plain"])]
        out[name] = {"steps_per_s": rates[name], "median_steps_per_s": statistics.median(rates[name]),
                     "ratio_to_plain": ratios, "median_ratio_to_plain": statistics.median(ratios),
                     "test_accuracy": accuracy[name], "median_test_accuracy": statistics.median(accuracy[name])}
    return out


# -- sampling and pipeline speed ----------------------------------------------------------------------
def sampling_speed(generators: dict, runs: int, calls: int, n: int = 1024) -> dict:
    import tensorflow as tf

    out = {}
    for name, gen in generators.items():
        codes = tf.constant(np.arange(n) % len(gen.classes_), tf.int32)
        modes = {"float32": ("float32", False), "xla": ("float32", True),
                 "mixed_float16": ("mixed_float16", False), "mixed_bfloat16": ("mixed_bfloat16", False)}
        if name == "Flow":
            modes = {k: v for k, v in modes.items() if v[0] == "float32"}  # the Flow samples in float32 only
        out[name] = {}
        for mode, (precision, jit) in modes.items():
            fn = tf.function(lambda seed, p=precision: gen._sample_graph(n, codes, seed, precision=p),
                             jit_compile=jit)
            fn(tf.constant([0, 0], tf.int32)).numpy()  # trace (and compile)
            timings = []
            for run in range(runs):
                start = time.perf_counter()
                for i in range(calls):
                    result = fn(tf.constant([run, i], tf.int32))
                result.numpy()
                timings.append(calls * n / (time.perf_counter() - start))
            out[name][mode] = {"samples_per_s": timings, "median_samples_per_s": statistics.median(timings)}
            print(f"  sampling {name:5s} {mode:15s} {statistics.median(timings):10.0f} samples/s")
    return out


def pipeline_speed(vae, X, y, runs: int, batches: int) -> dict:
    import tensorflow as tf

    from synthaug.integrations.tf_data import augment

    base = tf.data.Dataset.from_tensor_slices((X, y)).repeat().batch(BATCH)
    out = {}
    for mode, options in {"plain": None, "augment": {}, "augment_xla": {"jit_compile": True},
                          "augment_bfloat16": {"precision": "mixed_bfloat16"}}.items():
        ds = base if options is None else augment(base, vae, ratio=RATIO, seed=0, **options)
        ds = ds.take(batches)
        for _ in ds.take(3):  # trace / compile
            pass
        timings = []
        for _ in range(runs):
            start = time.perf_counter()
            for _ in ds:
                pass
            timings.append(batches * BATCH / (time.perf_counter() - start))
        out[mode] = {"examples_per_s": timings, "median_examples_per_s": statistics.median(timings)}
        print(f"  pipeline {mode:17s} {statistics.median(timings):10.0f} examples/s")
    return out


# -- distributed ------------------------------------------------------------------------------------------
DISTRIBUTED = textwrap.dedent("""
    import json, os, sys, time
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from synthaug import VAE

    epochs = int(sys.argv[1])
    d = load_digits()
    X, _, y, _ = train_test_split(d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)
    def fit(seed, strategy=None):
        vae = VAE(epochs=epochs, validation_fraction=0.0, random_state=seed)
        start = time.perf_counter()
        if strategy is None:
            vae.fit(X, y)
        else:
            with strategy.scope():
                vae.fit(X, y)
        return {"loss": vae.history_["loss"], "seconds": time.perf_counter() - start}
    out = {"one_device_seed0": fit(0), "one_device_seed1": fit(1),
           "two_devices_seed0": fit(0, tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))}
    print("RESULT" + json.dumps(out))
""")


def distributed(epochs: int) -> dict:
    run = subprocess.run([sys.executable, "-c", DISTRIBUTED, str(epochs)], capture_output=True, text=True,
                         timeout=3600)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT")]
    if run.returncode or not lines:
        raise RuntimeError(run.stderr[-3000:])
    out = json.loads(lines[0][len("RESULT"):])

    def gap(a, b):
        return max(abs(u - v) / abs(v) for u, v in zip(out[a]["loss"], out[b]["loss"]))

    out["max_relative_gap_two_vs_one_device"] = gap("two_devices_seed0", "one_device_seed0")
    out["max_relative_gap_seed1_vs_seed0"] = gap("one_device_seed1", "one_device_seed0")
    return out


# -- GPU placement ------------------------------------------------------------------------------------------
def placement() -> dict:
    """Where the generator's sampling ops and SyntheticMix run; ``{"gpu": False}`` without a GPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        print("no GPU: TensorFlow sees", [d.name for d in tf.config.list_physical_devices()])
        return {"gpu": False}
    from synthaug import VAE
    from synthaug.integrations.tf_data import SyntheticMix

    X, _, y, _ = digits_split()
    vae = VAE(decoder_output="mean", epochs=3, random_state=0).fit(X, y)
    variables = sorted({v.value.device for v in vae.model_.weights})

    @tf.function
    def sample(seed):
        return vae._sample_graph(1024, tf.zeros((1024,), tf.int32), seed)

    graph = sample.get_concrete_function(tf.TensorSpec((2,), tf.int32)).graph
    sample(tf.constant([0, 0]))  # runs it
    mix = SyntheticMix(vae, RATIO, seed=0)
    mixed = mix([tf.constant(X[:256]), tf.constant(y[:256])], training=True)
    out = {"gpu": True, "devices": [g.name for g in gpus], "variable_devices": variables,
           "sample_output_device": sample(tf.constant([1, 1])).device, "synthetic_mix_output_device": mixed.device,
           "ops_in_sampling_graph": len(graph.get_operations())}
    out["ok"] = all("GPU" in d for d in variables) and "GPU" in out["sample_output_device"]
    print(json.dumps(out, indent=1))
    return out


def table(results: dict) -> str:
    lines = ["| row | value |", "| --- | ---: |"]
    for data, key in (("digits", "fit_speed"), ("faces", "fit_speed_faces")):
        for name, row in results.get(key, {}).items():
            lines.append(f"| fit {data}, {name}: steps/s (median) | {row['median_steps_per_s']:.1f} |")
            lines.append(f"| fit {data}, {name}: ratio to plain (median of runs) | "
                         f"{row['median_ratio_to_plain']:.3f} |")
            lines.append(f"| fit {data}, {name}: test accuracy (median) | {row['median_test_accuracy']:.4f} |")
    for name, modes in results.get("sampling_speed", {}).items():
        for mode, row in modes.items():
            lines.append(f"| sampling {name}, {mode}: samples/s | {row['median_samples_per_s']:,.0f} |")
    for mode, row in results.get("pipeline_speed", {}).items():
        lines.append(f"| pipeline {mode}: examples/s | {row['median_examples_per_s']:,.0f} |")
    dist = results.get("distributed")
    if dist:
        lines.append(f"| MirroredStrategy: max relative loss gap, 2 devices vs 1 | "
                     f"{dist['max_relative_gap_two_vs_one_device']:.2e} |")
        lines.append(f"| seed noise: max relative loss gap, seed 1 vs seed 0 | "
                     f"{dist['max_relative_gap_seed1_vs_seed0']:.2e} |")
        for name in ("one_device_seed0", "two_devices_seed0", "one_device_seed1"):
            curve = ", ".join(f"{v:.2f}" for v in dist[name]["loss"])
            lines.append(f"| loss curve {name} ({dist[name]['seconds']:.0f} s) | {curve} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=positive_int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--placement", action="store_true", help="only check GPU placement")
    parser.add_argument("--skip-distributed", action="store_true")
    parser.add_argument("--skip-faces", action="store_true", help="no fit-speed rows on lfw faces")
    parser.add_argument("--skip-sampling", action="store_true", help="no sampling-speed and pipeline-speed rows")
    parser.add_argument("--compact-vae-params", type=json.loads, default=None,
                        help="JSON of VAE parameters for an extra fit-speed row with a second, cheaper VAE, "
                             "e.g. '{\"conv_filters\": [8, 16], \"hidden_units\": [128]}'")
    parser.add_argument("--pose", action="store_true", help="an extra fit-speed row with a PoseModel")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results-tf_data.json"))
    args = parser.parse_args(argv)
    if args.placement:
        placement()
        return
    import tensorflow as tf

    started = time.perf_counter()
    X, X_test, y, y_test = digits_split()
    results = {"command": "python benchmarks/tf_data.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "devices": [d.name for d in tf.config.list_physical_devices()]},
               "date": time.strftime("%Y-%m-%d")}
    generators = fit_generators(X, y, args.quick)
    results["vae_epochs"] = len(generators["VAE"].history_["loss"])
    extra = {"augment_compact": compact_vae(X, y, args.compact_vae_params, args.quick, results, "compact_vae"),
             "augment_pose": pose_model(X, y, args.pose, results, "pose_model")}
    results["fit_speed"] = fit_speed(generators["VAE"], X, y, X_test, y_test, args.runs, 15 if args.quick else 40,
                                     extra=extra)
    if not args.skip_faces:
        from synthaug import VAE

        F, F_test, f, f_test = faces_split()
        faces_vae = VAE(decoder_output="mean", epochs=5 if args.quick else 100, random_state=0).fit(F, f)
        results["faces_vae_epochs"] = len(faces_vae.history_["loss"])
        print(f"faces: VAE {results['faces_vae_epochs']} epochs")
        extra = {"augment_compact": compact_vae(F, f, args.compact_vae_params, args.quick, results,
                                                "faces_compact_vae"),
                 "augment_pose": pose_model(F, f, args.pose, results, "faces_pose_model")}
        results["fit_speed_faces"] = fit_speed(faces_vae, F, f, F_test, f_test, args.runs, 15 if args.quick else 40,
                                               scale=1.0, extra=extra)
    if not args.skip_sampling:
        results["sampling_speed"] = sampling_speed(generators, args.runs, 5 if args.quick else 20)
        results["pipeline_speed"] = pipeline_speed(generators["VAE"], X, y, args.runs, 20 if args.quick else 60)
    if not args.skip_distributed:
        results["distributed"] = distributed(3 if args.quick else 15)
    results["seconds"] = time.perf_counter() - started
    print(table(results))
    print(f"total {results['seconds']:.0f} s")
    if args.out:
        from synthaug.io import atomic_write_bytes

        atomic_write_bytes(args.out, json.dumps(results, indent=1).encode())
        print("wrote", args.out)


if __name__ == "__main__":
    main()
