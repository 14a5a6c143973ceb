"""Experiment for the README's #7 low-data digits row: cross-class "style transfer" with the
conditional VAE of benchmarks/augmentation.py.

The VAE's encoder does not see the label, its decoder does, so the latent code of an image can be
decoded under any label: a "3" written in the slant and thickness of a "7" (the analogies of
Kingma et al., 2014). Each class then gets the styles of all 100 real images instead of its own
10, or of prior draws. Per seed (the benchmark's draws of 10 images per class), one VAE with the
benchmark's DIGITS_VAE settings is fitted, and these synthetic sets (10 images per real image,
as the benchmark's synthaug row) are scored with the benchmark's RBF SVC:

- ``prior``: the benchmark's synthaug row (``SyntheticAugmenter``, decoder mean of prior draws);
- ``styles``: every real image's code decoded under every label (100 per class);
- ``styles + jitter``: the same, plus the benchmark's Gaussian-noise jitter of the real images.

It also prints how often an SVC trained on the held-out images (the 1,697 the accuracies are
measured on; a diagnosis only, no classifier above sees them) gives the synthetic images the
label they were decoded under (``agreement``), for the prior draws and for the style transfers
(split into codes from the same class and codes from another class).

Not a shipped feature. Usage: python benchmarks/experiments/style_transfer.py [--seeds 3]
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

import augmentation as bench  # noqa: E402
from synthaug import VAE  # noqa: E402
from synthaug.integrations.sklearn import SyntheticAugmenter  # noqa: E402


def styles(vae, X, y):
    """Every image's latent code decoded under every label: (n_classes * n, 8, 8) and labels."""
    Z = vae.transform(X)
    classes = np.unique(y)
    images = np.concatenate([vae.inverse_transform(Z, np.full(len(Z), c)) for c in classes])
    return images, np.repeat(classes, len(Z))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    d = load_digits()
    scores = {"real only": [], "jitter": [], "prior": [], "styles": [], "styles + jitter": []}
    agreement = {"prior": [], "styles, same class": [], "styles, other class": []}
    for seed in range(args.seeds):
        idx, rest = bench.draw(d.target, seed)
        X, y, X_test, y_test = d.images[idx], d.target[idx], d.images[rest], d.target[rest]
        rng = np.random.RandomState(seed)
        flat = X.reshape(len(X), -1)
        scores["real only"].append(bench.svc_accuracy(X, y, X_test, y_test))
        X_jit, y_jit = bench.jitter(X, y, rng, **bench.JITTER)
        scores["jitter"].append(bench.svc_accuracy(X_jit, y_jit, X_test, y_test))
        aug = SyntheticAugmenter(VAE(random_state=seed, **bench.DIGITS_VAE), sampling_strategy=None,
                                 ratio=bench.DIGITS_RATIO, random_state=seed)
        X_res, y_res = aug.fit_resample(X, y)
        scores["prior"].append(bench.svc_accuracy(X_res, y_res, X_test, y_test))
        S, s = styles(aug.generator_, X, y)
        S = S.reshape(len(S), -1)
        judge = SVC().fit(X_test.reshape(len(X_test), -1), y_test)
        synthetic = slice(len(X), None)  # fit_resample returns the real rows first
        agreement["prior"].append(np.mean(judge.predict(X_res[synthetic].reshape(-1, 64)) == y_res[synthetic]))
        same = s == np.tile(y, len(np.unique(y)))  # row i of each label's block came from image i
        hits = judge.predict(S) == s
        agreement["styles, same class"].append(np.mean(hits[same]))
        agreement["styles, other class"].append(np.mean(hits[~same]))
        scores["styles"].append(bench.svc_accuracy(np.r_[flat, S], np.r_[y, s], X_test, y_test))
        scores["styles + jitter"].append(bench.svc_accuracy(np.r_[X_jit, S], np.r_[y_jit, s], X_test, y_test))
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in scores.items()), flush=True)
    for name, v in scores.items():
        print(f"{name:16s} {np.mean(v):.4f} ± {np.std(v):.4f}")
    for name, v in agreement.items():
        print(f"agreement, {name:20s} {np.mean(v):.4f}")


if __name__ == "__main__":
    main()
