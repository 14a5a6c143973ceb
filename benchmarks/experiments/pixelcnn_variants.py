"""Experiment behind the README's PixelCNN "tried" list: single PixelCNNs on the digits protocol
split (benchmarks/digits.py's ``split``), one line per variant with test and training bits/dim
(log p(x | y)), epochs and fit seconds.

- ``--params '{"filters": 24}' '{"n_mixtures": 10}' ...``: ``PixelCNN(random_state=0, **params)``.
- ``--transforms id,flip ...``: distribution augmentation (Jun et al., 2020, "DistAug"): the
  training images plus a transformed copy per listed transform, each copy labelled with the pair
  (class, transform) so the model learns a density per transform; the test split is scored
  under (class, identity), still an exact density of the untransformed images. Combine with
  ``--params`` for the estimator's parameters (one JSON object). With the estimator's own
  validation split, copies of a training image can land in validation (pass
  ``validation_fraction=0`` and ``epochs`` to avoid that leak).
- ``--mc-dropout 32``: after each fit, the test split scored with dropout left on, averaging each
  pixel's conditional distribution over 1, 4, 8, ... of 32 dropout masks (an exact
  autoregressive density, like a per-pixel ensemble, at the cost of one fit).

Not a shipped feature: the README says what each variant gave. Usage:
python benchmarks/experiments/pixelcnn_variants.py --params '{}' '{"filters": 24}'
python benchmarks/experiments/pixelcnn_variants.py --transforms id,flip id --params '{"validation_fraction": 0, "epochs": 50}'
python benchmarks/experiments/pixelcnn_variants.py --mc-dropout 32
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.special import logsumexp  # noqa: E402

from digits import bits_per_dim, split  # noqa: E402
from pixelcnn_ensembles import ORDERS, log_prob_dims  # noqa: E402
from synthaug import PixelCNN  # noqa: E402

# The ensembles script's pixel orderings, under short names for --transforms.
TRANSFORMS = dict(zip(("id", "flip", "transpose", "transflip"), ORDERS.values()))


def fit_and_score(X_train, y_train, X_test, y_test, params, transforms=("id",)):
    n = len(transforms)
    X = np.concatenate([np.ascontiguousarray(TRANSFORMS[t](X_train)) for t in transforms])
    y = np.concatenate([y_train * n + i for i in range(n)])  # label = (class, transform)
    started = time.perf_counter()
    model = PixelCNN(random_state=0, **params).fit(X, y)
    seconds = time.perf_counter() - started
    return model, (bits_per_dim(model.score_samples(X_test, y_test * n)),
                   bits_per_dim(model.score_samples(X_train, y_train * n)), len(model.history_["loss"]), seconds)


def mc_dropout_bits_per_dim(model, X_test, y_test, n_masks):
    """Test bits/dim of the per-pixel average over 1, 2, 4, ... dropout masks."""
    tf.random.set_seed(0)
    dims = np.stack([log_prob_dims(model, X_test, y_test, training=True) for _ in range(n_masks)])
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64) if k < n_masks] + [n_masks]
    return {k: bits_per_dim((logsumexp(dims[:k], axis=0) - np.log(k)).sum(1)) for k in ks}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", nargs="*", type=json.loads, default=[{}])
    parser.add_argument("--transforms", nargs="*", type=lambda s: tuple(s.split(",")), default=None)
    parser.add_argument("--mc-dropout", type=int, default=0, metavar="N_MASKS")
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = split()
    if args.transforms is None:
        runs = [(params, ("id",)) for params in args.params]
    else:
        if len(args.params) != 1:
            parser.error("--transforms takes one --params object")
        unknown = {t for ts in args.transforms for t in ts} - set(TRANSFORMS)
        if unknown:
            parser.error(f"unknown transforms {sorted(unknown)}; known: {list(TRANSFORMS)}")
        runs = [(args.params[0], ts) for ts in args.transforms]
    for params, transforms in runs:
        model, (test, train, epochs, seconds) = fit_and_score(X_train, y_train, X_test, y_test, params, transforms)
        print(f"{json.dumps(params)} transforms={','.join(transforms)}: test {test:.4f} train {train:.4f} "
              f"bits/dim, {epochs} epochs, fit {seconds:.0f} s", flush=True)
        if args.mc_dropout and transforms == ("id",):
            scores = mc_dropout_bits_per_dim(model, X_test, y_test, args.mc_dropout)
            print("  MC dropout, test bits/dim: " + ", ".join(f"{k} masks {v:.4f}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
