"""Experiment behind the README's tf.data note on CPU use: how many cores ``model.fit`` of
benchmarks/tf_data.py's classifier keeps busy on the plain digits dataset and on
``augment(ratio=0.5)``, as process CPU time over wall time for 3 epochs of 40 steps after a
1-epoch warm-up (tracing), and the CPU milliseconds per step that follow.

Speed does not depend on training, so the VAE is fitted for 5 epochs only. Usage:
python benchmarks/experiments/tf_data_cpu_use.py [--runs 3]
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_data as bench  # noqa: E402
from synthaug import VAE  # noqa: E402
from synthaug.integrations.tf_data import augment  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    X, _, y, _ = bench.digits_split()
    vae = VAE(decoder_output="mean", epochs=5, random_state=0).fit(X, y)
    base = bench.training_batches(X, y)
    configs = {"plain": lambda: base, "augment": lambda: augment(base, vae, bench.RATIO, seed=0)}
    for run in range(args.runs):
        for name, make in configs.items():
            keras.utils.set_random_seed(run)
            train, _ = bench.classifier()
            data = make().map(lambda x, t: ((x, t), t)).prefetch(tf.data.AUTOTUNE)
            train.fit(data, epochs=1, steps_per_epoch=40, verbose=0)
            wall, cpu = time.perf_counter(), time.process_time()
            train.fit(data, epochs=3, steps_per_epoch=40, verbose=0)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"run {run} {name:8s}: {120 / wall:5.0f} steps/s, {cpu / wall:.2f} cores busy, "
                  f"{cpu / 120 * 1e3:.1f} CPU-ms per step", flush=True)


if __name__ == "__main__":
    main()
