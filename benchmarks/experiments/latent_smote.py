"""Experiment behind the README's #7 "tried" note: SMOTE in a VAE's latent space on the imbalanced
breast-cancer protocol of benchmarks/augmentation.py (the same 4 draws and folds).

Per training fold, one VAE (the benchmark's TABULAR_VAE, decoder mean) is fitted on the malignant
rows; each new malignant row is decoded from a random point between a malignant row's latent code
and one of its 5 nearest latent neighbours, until the classes are balanced. Not a shipped
feature. Usage: python benchmarks/experiments/latent_smote.py [--draws 4]
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from sklearn.metrics import balanced_accuracy_score, f1_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import augmentation as bench  # noqa: E402
from synthaug import VAE  # noqa: E402


def latent_smote(X, y, seed, k=5):
    rng = np.random.RandomState(seed)
    minority, need = X[y == 1], int((y == 0).sum() - (y == 1).sum())
    vae = VAE(random_state=seed, **bench.TABULAR_VAE).fit(minority)
    Z = vae.transform(minority)
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(Z).kneighbors(Z, return_distance=False)[:, 1:]
    i = rng.randint(len(Z), size=need)
    j = neighbours[i, rng.randint(k, size=need)]
    new = vae.inverse_transform(Z[i] + rng.uniform(size=(need, 1)) * (Z[j] - Z[i]))
    return np.vstack([X, new]), np.r_[y, np.ones(need, int)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=4)
    args = parser.parse_args()
    classifiers = bench.TABULAR_CLASSIFIERS
    scores = {c: {"balanced_accuracy": [], "f1": []} for c in classifiers}
    for seed in range(args.draws):
        X, y = bench.imbalanced_breast_cancer(seed)
        for fold, (train, test) in enumerate(StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y)):
            scaler = StandardScaler().fit(X[train])
            X_res, y_res = latent_smote(scaler.transform(X[train]), y[train], fold)
            for name, make in classifiers.items():
                pred = make(seed).fit(X_res, y_res).predict(scaler.transform(X[test]))
                scores[name]["balanced_accuracy"].append(balanced_accuracy_score(y[test], pred))
                scores[name]["f1"].append(f1_score(y[test], pred))
        print(f"draw {seed} done", flush=True)
    for name, s in scores.items():
        print(f"{name}: balanced accuracy {np.mean(s['balanced_accuracy']):.4f}, F1 {np.mean(s['f1']):.4f}")


if __name__ == "__main__":
    main()
