"""Experiment for the README's #7 imbalanced-tabular rows: the conditional VAE's minority rows,
kept only where real minority rows are the local majority (the edited-nearest-neighbours rule of
SMOTE + ENN, applied to synthetic rows only).

On the benchmark, one conditional VAE (fitted on both classes) raises the random forest's
balanced accuracy above SMOTE's but lowers F1: some of its minority rows land among majority ones
and make the classifier flag majority cases. Here, per training fold (benchmarks/augmentation.py's
draws, 5 folds, scaling and classifiers), one conditional VAE (the benchmark's TABULAR_VAE,
decoder mean) generates 4x the missing minority rows; "unfiltered" takes the first of them until
the classes are balanced, "filtered" the first that have at least 3 minority rows among their 5
nearest real training rows (fewer if too few pass; the share is printed). SMOTE beside them.

``--data breast_cancer`` is the benchmark's protocol (malignant cut to 10 %); ``--data digits``
the same on another dataset: scikit-learn's digits, one digit (``--digit``, default 3) against
the rest, that digit cut to 10 % of the rows. Not a shipped feature. Usage:
python benchmarks/experiments/filtered_conditional.py [--data breast_cancer|digits] [--draws 4]
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from imblearn.over_sampling import SMOTE  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.metrics import balanced_accuracy_score, f1_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import augmentation as bench  # noqa: E402
from synthaug import VAE  # noqa: E402

K, VOTES, OVERSAMPLE = 5, 3, 4


def imbalanced_digits(seed, digit=3, share=0.10):
    """Digits as a binary task, ``digit`` (label 1) against the rest, cut to ``share`` of the rows."""
    X, target = load_digits(return_X_y=True)
    return bench.cut_minority(X, (target == digit).astype(int), seed, share)


def conditional_rows(X, y, seed):
    """Minority rows from one conditional VAE: {"unfiltered": (X, y), "filtered": (X, y)}, and the
    share of the missing rows the filtered set fills."""
    need = int((y == 0).sum() - (y == 1).sum())
    vae = VAE(random_state=seed, **bench.TABULAR_VAE).fit(X, y)
    new, _ = vae.generate(need * OVERSAMPLE, y=1, random_state=seed)
    votes = KNeighborsClassifier(K).fit(X, y).predict_proba(new)[:, 1] * K
    kept = new[votes >= VOTES - 1e-9][:need]
    grow = lambda rows: (np.vstack([X, rows]), np.r_[y, np.ones(len(rows), int)])  # noqa: E731
    return {"unfiltered": grow(new[:need]), "filtered": grow(kept)}, len(kept) / need


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("breast_cancer", "digits"), default="breast_cancer")
    parser.add_argument("--digit", type=int, default=3)
    parser.add_argument("--draws", type=int, default=4)
    args = parser.parse_args()
    classifiers = bench.TABULAR_CLASSIFIERS
    samplers = ("SMOTE", "conditional VAE, unfiltered", "conditional VAE, filtered")
    scores = {(c, s): {"balanced_accuracy": [], "f1": []} for c in classifiers for s in samplers}
    kept = []
    for seed in range(args.draws):
        X, y = (bench.imbalanced_breast_cancer(seed) if args.data == "breast_cancer"
                else imbalanced_digits(seed, args.digit))
        for fold, (train, test) in enumerate(StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y)):
            scaler = StandardScaler().fit(X[train])
            X_train, X_test = scaler.transform(X[train]), scaler.transform(X[test])
            vae_sets, share = conditional_rows(X_train, y[train], fold)
            kept.append(share)
            sets = {"SMOTE": SMOTE(random_state=fold).fit_resample(X_train, y[train]),
                    "conditional VAE, unfiltered": vae_sets["unfiltered"],
                    "conditional VAE, filtered": vae_sets["filtered"]}
            for s_name, (X_res, y_res) in sets.items():
                for c_name, make in classifiers.items():
                    pred = make(seed).fit(X_res, y_res).predict(X_test)
                    scores[c_name, s_name]["balanced_accuracy"].append(balanced_accuracy_score(y[test], pred))
                    scores[c_name, s_name]["f1"].append(f1_score(y[test], pred))
        print(f"draw {seed} done ({int(y.sum())} minority of {len(y)} rows)", flush=True)
    for (c_name, s_name), s in scores.items():
        print(f"{c_name:22s} {s_name:28s} balanced accuracy {np.mean(s['balanced_accuracy']):.4f}, "
              f"F1 {np.mean(s['f1']):.4f}")
    print(f"filtered: share of the missing rows filled, mean {np.mean(kept):.3f} (min {np.min(kept):.3f})")


if __name__ == "__main__":
    main()
