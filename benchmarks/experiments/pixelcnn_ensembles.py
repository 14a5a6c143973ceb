"""Experiment behind the README's PixelCNN "tried" list: ensembles of default PixelCNNs on the
digits protocol split (benchmarks/digits.py's ``split``), test bits/dim.

- ``--mode orders``: one model per pixel ordering (the image as is, flipped left-right,
  transposed, transposed and flipped; each trained and scored on the same transform of the
  images) and the equal image-level mixture of the first k, log p = logsumexp_k log p_k - log k.
- ``--mode seeds``: default models with seeds 0..n-1, combined per pixel (the average of each
  pixel's conditional distribution, still an exact autoregressive density) and per image.

Not a shipped feature: the README explains why. Usage:
python benchmarks/experiments/pixelcnn_ensembles.py --mode orders|seeds [--n 4]
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.special import logsumexp  # noqa: E402

from digits import bits_per_dim, split  # noqa: E402
from synthaug import PixelCNN  # noqa: E402

ORDERS = {"as is": lambda X: X, "flipped": lambda X: X[:, :, ::-1], "transposed": lambda X: np.swapaxes(X, 1, 2),
          "transposed+flipped": lambda X: np.swapaxes(X, 1, 2)[:, :, ::-1]}


def log_prob_dims(model, X, y, training=False):
    """log P(x_d | x_<d, y) of every pixel of ``X`` under a fitted PixelCNN, (n, D) float64;
    ``training=True`` leaves dropout on (a fresh mask per call)."""
    _, Z = model._levels_of(X)
    codes = tf.constant(model._check_label_input(Z, y).astype("int32"))
    x, net = tf.constant(Z), model.model_
    dims = net.level_log_prob(x, net.params(x, codes, training=training))
    return dims.numpy().reshape(len(Z), -1).astype(np.float64)


def mixture_bpd(log_probs):
    return bits_per_dim(logsumexp(np.stack(log_probs), axis=0) - np.log(len(log_probs)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("orders", "seeds"), required=True)
    parser.add_argument("--n", type=int, default=4)
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = split()
    per_image, per_pixel, started = [], [], time.perf_counter()
    for i in range(args.n):
        transform = list(ORDERS.values())[i] if args.mode == "orders" else ORDERS["as is"]
        model = PixelCNN(random_state=0 if args.mode == "orders" else i).fit(
            np.ascontiguousarray(transform(X_train)), y_train)
        dims = log_prob_dims(model, np.ascontiguousarray(transform(X_test)), y_test)
        per_pixel.append(dims)
        per_image.append(dims.sum(1))
        name = list(ORDERS)[i] if args.mode == "orders" else f"seed {i}"
        print(f"{name}: {bits_per_dim(per_image[-1]):.4f} bits/dim ({time.perf_counter() - started:.0f} s so far)")
        if i:
            line = f"  {i + 1} models: image-level mixture {mixture_bpd(per_image):.4f}"
            if args.mode == "seeds":
                pixels = (logsumexp(np.stack(per_pixel), axis=0) - np.log(i + 1)).sum(1)
                line += f", per-pixel ensemble {bits_per_dim(pixels):.4f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
