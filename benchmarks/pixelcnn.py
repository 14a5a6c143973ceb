"""PixelCNN on the digits protocol of ARCHITECTURE.md, beside baselines and TFP's PixelCNN++.

Rows (test split, bits per dimension of the exact discrete likelihood; ``split`` and
``bits_per_dim`` are imported from benchmarks/digits.py, so the protocol is the same):

- independent pixels: a Laplace-smoothed categorical per pixel (and per pixel and class);
- linear autoregressive: per pixel, a multinomial logistic regression on the earlier pixels and
  the one-hot label (smoothed with 1% of the per-pixel categorical, so no level has probability 0);
- synthaug's PixelCNN with its default parameters, conditional on the label (log p(x | y)) and
  marginalised over classes (log p(x));
- TFP's ``tfd.PixelCNN`` (PixelCNN++: 2 hierarchies, 32 filters, 1 resnet block, 5 logistics,
  dropout 0.3), conditional on the one-hot label, trained for a fixed number of epochs (tf_keras,
  as TFP requires; used here only).

Timings: fit (wall and process CPU seconds), and the time to sample 64 digits: median of
``--repeats`` runs after a warm-up, for our fast sampler (with and without XLA), our naive
sampler (the whole network per pixel) and ``tfd.PixelCNN.sample``.

Usage: python benchmarks/pixelcnn.py [--tfp-epochs 30] [--repeats 3] [--params '{"epochs": 100}']
       [--out benchmarks/results-pixelcnn.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np

# The digits protocol itself: the same split and bits/dim as benchmarks/digits.py.
from digits import LEVELS, D, bits_per_dim, split
from _arguments import positive_int


def median_time(fn, repeats):
    fn()  # warm-up (tracing, compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), times


def independent_pixels(X_train, y_train, X_test, y_test):
    train = X_train.reshape(len(X_train), -1).astype(int)
    test = X_test.reshape(len(X_test), -1).astype(int)

    def log_p(train_part, test_part):
        counts = np.stack([np.bincount(train_part[:, j], minlength=LEVELS) + 1 for j in range(D)])
        probs = counts / counts.sum(1, keepdims=True)
        return np.log(probs[np.arange(D), test_part]).sum(1)

    per_class = np.empty(len(test))
    for c in np.unique(y_train):
        per_class[y_test == c] = log_p(train[y_train == c], test[y_test == c])
    return bits_per_dim(log_p(train, test)), bits_per_dim(per_class)


def linear_autoregressive(X_train, y_train, X_test, y_test, mix=0.01):
    from sklearn.linear_model import LogisticRegression

    train = X_train.reshape(len(X_train), -1).astype(int)
    test = X_test.reshape(len(X_test), -1).astype(int)
    onehot = np.eye(10)
    A = np.hstack([onehot[y_train], train / 16.0])
    B = np.hstack([onehot[y_test], test / 16.0])
    total = np.zeros(len(test))
    for j in range(D):
        counts = np.bincount(train[:, j], minlength=LEVELS) + 1.0
        smooth = counts / counts.sum()
        probs = np.tile(smooth, (len(test), 1))
        if len(np.unique(train[:, j])) > 1:
            lr = LogisticRegression(max_iter=2000).fit(A[:, :10 + j], train[:, j])
            fitted = np.zeros((len(test), LEVELS))
            fitted[:, lr.classes_] = lr.predict_proba(B[:, :10 + j])
            probs = (1 - mix) * fitted + mix * smooth
        total += np.log(probs[np.arange(len(test)), test[:, j]])
    return bits_per_dim(total)


def ours(X_train, y_train, X_test, y_test, params, repeats):
    import tensorflow as tf

    from synthaug import PixelCNN

    load_before = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    model = PixelCNN(random_state=0, **params).fit(X_train, y_train)
    fit_s, fit_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    row = {"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "fit_load_average": [load_before, os.getloadavg()[0]],
           "epochs": len(model.history_["loss"]),
           "test_bpd": bits_per_dim(model.score_samples(X_test, y_test)),
           "test_bpd_marginal": bits_per_dim(model.score_samples(X_test)),
           "n_params": int(model.model_.count_params()), "params": params}
    row["sample64_s"], row["sample64_runs"] = median_time(lambda: model.generate(64, random_state=0), repeats)
    # The same sampler compiled with XLA, on the same noise and labels.
    codes = np.random.RandomState(0).randint(0, 10, 64)
    args = [tf.constant(a) for a in (np.zeros((64, 8, 8, 1), "int32"), np.ones((64, 8, 8, 1), bool),
                                     model._noise(np.random.RandomState(0), 64), codes.astype("int32"))]
    xla = model.model_.compiled_fn("sample", jit_compile=True)
    start = time.perf_counter()
    xla(*args)
    row["xla_compile_s"] = time.perf_counter() - start
    row["sample64_xla_s"], _ = median_time(lambda: xla(*args).numpy(), repeats)
    row["sample64_naive_s"], _ = median_time(lambda: model.generate(64, random_state=0, method="naive"), 1)
    row["sample10000_s"], _ = median_time(lambda: model.generate(10000, random_state=0), 1)
    return row, model


def tfp_pixelcnn(X_train, y_train, X_test, y_test, epochs, repeats, seed=0):
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras

    tf.random.set_seed(seed)
    onehot = np.eye(10, dtype="float32")
    dist = tfp.distributions.PixelCNN(image_shape=(8, 8, 1), conditional_shape=(10,), num_resnet=1,
                                      num_hierarchies=2, num_filters=32, num_logistic_mix=5, dropout_p=0.3,
                                      high=16, low=0)
    image_in = tf_keras.layers.Input(shape=(8, 8, 1))
    label_in = tf_keras.layers.Input(shape=(10,))
    log_prob = dist.log_prob(image_in, conditional_input=label_in)
    model = tf_keras.Model(inputs=[image_in, label_in], outputs=log_prob)
    model.add_loss(-tf.reduce_mean(log_prob))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    images = X_train[..., None].astype("float32")
    load_before = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    model.fit([images, onehot[y_train]], epochs=epochs, batch_size=16, verbose=0, shuffle=True)
    fit_s, fit_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    fit_load = [load_before, os.getloadavg()[0]]
    test_log_p = np.concatenate([
        dist.log_prob(X_test[i:i + 200, ..., None].astype("float32"), conditional_input=onehot[y_test[i:i + 200]],
                      training=False).numpy()
        for i in range(0, len(X_test), 200)])
    labels = onehot[np.arange(64) % 10]
    sample_s, runs = median_time(lambda: dist.sample(64, conditional_input=labels, seed=seed).numpy(), repeats)
    return {"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "fit_load_average": fit_load, "epochs": epochs, "test_bpd": bits_per_dim(test_log_p),
            "n_params": int(model.count_params()), "sample64_s": sample_s, "sample64_runs": runs}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--tfp-epochs", type=int, default=30)
    parser.add_argument("--params", type=json.loads, default={}, help="JSON of PixelCNN parameters to change")
    parser.add_argument("--out", default="benchmarks/results-pixelcnn.json")
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = split()
    rows = []
    independent, independent_class = independent_pixels(X_train, y_train, X_test, y_test)
    rows.append({"model": "independent pixels (Laplace)", "test_bpd": independent})
    rows.append({"model": "independent pixels given class (Laplace)", "test_bpd": independent_class})
    start = time.perf_counter()
    linear = linear_autoregressive(X_train, y_train, X_test, y_test)
    rows.append({"model": "linear autoregressive (logistic regression)", "test_bpd": linear,
                 "fit_s": time.perf_counter() - start})
    row, _ = ours(X_train, y_train, X_test, y_test, args.params, args.repeats)
    rows.append({"model": "synthaug PixelCNN (conditional)", **row})
    peer = tfp_pixelcnn(X_train, y_train, X_test, y_test, args.tfp_epochs, args.repeats)
    rows.append({"model": f"tfd.PixelCNN (conditional, {args.tfp_epochs} epochs)", **peer})
    speedup = peer["sample64_s"] / row["sample64_s"]
    targets = {"test_bpd <= 1.60": row["test_bpd"] <= 1.60, "sampling speedup >= 50": speedup >= 50,
               "fit < 300 s": row["fit_s"] < 300}

    columns = [("test_bpd", "bits/dim", ".3f"), ("test_bpd_marginal", "marg.", ".3f"), ("fit_s", "fit s", ".1f"),
               ("fit_cpu_s", "fit cpu s", ".1f"), ("epochs", "epochs", ".0f"), ("n_params", "params", ".0f"),
               ("sample64_s", "64 smp s", ".3f")]
    print(f"{'model':46s}" + "".join(f" {title:>9s}" for _, title, _ in columns))
    for r in rows:
        cells = "".join(f" {format(r[k], fmt):>9s}" if k in r else f" {'':>9s}" for k, _, fmt in columns)
        print(f"{r['model'][:46]:46s}{cells}")
    print(f"sampling 64 digits: ours {row['sample64_s']:.3f} s (XLA {row['sample64_xla_s']:.3f} s after "
          f"{row['xla_compile_s']:.1f} s compiling; naive {row['sample64_naive_s']:.2f} s), "
          f"tfd.PixelCNN {peer['sample64_s']:.2f} s: {speedup:.0f}x faster; 10000 digits {row['sample10000_s']:.1f} s")
    print("targets:", ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in targets.items()))
    print(f"(machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"timings are medians of {args.repeats} after a warm-up)")
    with open(args.out, "w") as fh:
        json.dump({"protocol": "digits", "cpus": os.cpu_count(), "load_average_end": os.getloadavg(),
                   "speedup_sample64": speedup, "targets": targets, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
