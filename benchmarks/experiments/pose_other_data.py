"""Experiment for the README's PoseModel section: does learned pose augmentation help on other
low-data problems than the benchmark's (digits, RBF SVC)?

Two checks, each with the benchmark's recipe (10 synthetic images per real image, rows from the
same draws):

- ``--data digits --classifier knn|logreg``: the benchmark's digits draws (10 images per class,
  accuracy on the other 1,697) with another classifier: 1-nearest-neighbour or logistic regression;
- ``--data faces``: scikit-image's ``lfw_subset`` (100 faces and 100 non-faces, 25x25), 10 images
  per class, RBF SVC, accuracy on the other 180.

Rows: real only, the benchmark's hand-set random affine warps, ``PoseModel`` with the benchmark's
augmentation setting (``pose_scale=1.4``) and with its defaults (``pose_scale=1.0``).

``--generator-seed-offset K`` seeds the augmenters with ``draw + K`` instead of ``draw``: with
``--data digits --classifier svc`` it repeats the benchmark's PoseModel row with other samples.

Usage: python benchmarks/experiments/pose_other_data.py [--data digits|faces] [--classifier svc|knn|logreg]
       [--seeds 10] [--generator-seed-offset 0]
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

import augmentation as bench  # noqa: E402
from synthaug import PoseModel  # noqa: E402
from synthaug.integrations.sklearn import SyntheticAugmenter  # noqa: E402

CLASSIFIERS = {
    "svc": SVC,
    "knn": lambda: KNeighborsClassifier(1),
    "logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
}


def load(data):
    if data == "digits":
        d = load_digits()
        return d.images, d.target
    from skimage.data import lfw_subset

    faces = lfw_subset()  # 100 faces then 100 non-faces, floats in [0, 1]
    return faces, np.repeat([1, 0], 100)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("digits", "faces"), default="digits")
    parser.add_argument("--classifier", choices=tuple(CLASSIFIERS), default="svc")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--generator-seed-offset", type=int, default=0)
    args = parser.parse_args()
    images, target = load(args.data)

    def accuracy(X_train, y_train, X_test, y_test):
        flat = lambda X: np.asarray(X, np.float64).reshape(len(X), -1)  # noqa: E731
        return float(CLASSIFIERS[args.classifier]().fit(flat(X_train), y_train).score(flat(X_test), y_test))

    scores = {"real only": [], "random affine warps (hand-set)": [], "PoseModel, pose_scale=1.4": [],
              "PoseModel, defaults": []}
    for seed in range(args.seeds):
        idx, rest = bench.draw(target, seed)
        X, y, X_test, y_test = images[idx], target[idx], images[rest], target[rest]
        rng = np.random.RandomState(seed)
        scores["real only"].append(accuracy(X, y, X_test, y_test))
        scores["random affine warps (hand-set)"].append(accuracy(*bench.affine_jitter(X, y, rng, **bench.AFFINE),
                                                                 X_test, y_test))
        for name, params in (("PoseModel, pose_scale=1.4", bench.DIGITS_POSE), ("PoseModel, defaults", {})):
            generator_seed = seed + args.generator_seed_offset
            augmenter = SyntheticAugmenter(PoseModel(random_state=generator_seed, **params), sampling_strategy=None,
                                           ratio=bench.DIGITS_RATIO, random_state=generator_seed)
            scores[name].append(accuracy(*augmenter.fit_resample(X, y), X_test, y_test))
        print(f"  seed {seed}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in scores.items()), flush=True)
    print(f"\n{args.data}, {args.classifier}, 10 images per class, mean of {args.seeds} draws:")
    for name, values in scores.items():
        print(f"| {name} | {np.mean(values):.4f} | {np.std(values):.4f} |")


if __name__ == "__main__":
    main()
