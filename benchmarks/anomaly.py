"""Anomaly detection: ReconstructionAnomalyDetector beside PCA reconstruction error,
IsolationForest and OneClassSVM, measured in the same run (AUROC; normal data is the positive class).

Rows
----
- one-class digits: digits protocol split (``train_test_split(images, target, test_size=0.25,
  random_state=0, stratify=target)``); for each digit, fit on that digit's training images and
  score the whole held-out split (all ten digits). Mean and worst AUROC over the ten digits.
- lfw faces vs non-faces: ``skimage.data.lfw_subset()`` (100 faces, 100 non-faces, 25x25);
  fit on 70 faces, score the 30 held-out faces and the 100 non-faces.
- local defects: a small bright Gaussian blob (sigma 0.8 pixels, peak = the data's maximum)
  pasted at a random interior pixel of held-out images; clean held-out images against the same
  images with a blob. Digits at 8x8 and enlarged 3x to 24x24 (fitted on the whole digits
  training split), and the faces model above. The top-k score must beat the global MSE.
- every row has a column per score; "auto" is the default (ssim for images of 16x16 pixels or
  more, reconstruction for smaller ones, likelihood for tabular data) and the flag rates use it.
- tabular: breast_cancer (benign normal; 70 % of it for fitting; held-out benign plus 20 random
  malignant rows) and wine (each class normal in turn, the others anomalies), median over seeds,
  against IsolationForest.

Usage: python benchmarks/anomaly.py [--repeats 3] [--rows digits,lfw,defects,tabular]
       [--out benchmarks/results-anomaly.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM
from _arguments import names_from, positive_int

IMAGE_SCORES = ("auto", "reconstruction", "normalized", "topk", "ssim", "likelihood")
TABULAR_SCORES = ("auto", "reconstruction", "normalized", "topk", "likelihood")


def detector(random_state=0):
    from synthaug.integrations.anomaly import ReconstructionAnomalyDetector

    return ReconstructionAnomalyDetector(random_state=random_state)


def synthaug_aurocs(det, X_test, normal, scores) -> dict:
    """AUROC of every score of one fitted detector.

    ``score_samples`` depends only on the fitted generator and the training statistics, not on
    the score chosen at fit time, so one fit serves every score (``offset_`` is not used here).
    """
    out = {}
    for score in scores:
        out[score] = float(roc_auc_score(normal, det.set_params(anomaly_score=score).score_samples(X_test)))
    det.set_params(anomaly_score="auto")
    return out


def baseline_aurocs(X_train, X_test, normal, seed=0, standardise=False) -> dict:
    A, B = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    if standardise:
        scaler = StandardScaler().fit(A)
        A, B = scaler.transform(A), scaler.transform(B)
    pca = PCA(0.9, random_state=seed).fit(A)
    pca_score = -np.square(B - pca.inverse_transform(pca.transform(B))).sum(axis=1)
    scores = {
        "PCA": pca_score,
        "IsolationForest": IsolationForest(random_state=seed).fit(A).score_samples(B),
        "OneClassSVM": OneClassSVM(gamma="scale", nu=0.1).fit(A).score_samples(B),
    }
    return {name: float(roc_auc_score(normal, s)) for name, s in scores.items()}


def flag_rates(det, X_normal, X_anomalies) -> dict:
    """Shares flagged by ``predict`` (the fitted offset) among held-out normal data and anomalies."""
    return {"flagged_normal": float(np.mean(det.predict(X_normal) == -1)),
            "flagged_anomalies": float(np.mean(det.predict(X_anomalies) == -1))}


# -- rows ------------------------------------------------------------------------------------------
def one_class_digits(seed) -> dict:
    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=0.25, random_state=0, stratify=digits.target)
    per_digit, fit_s, flags = [], [], []
    for c in range(10):
        normal = y_test == c
        start = time.perf_counter()
        det = detector(seed).fit(X_train[y_train == c])
        fit_s.append(time.perf_counter() - start)
        result = {"digit": c, **synthaug_aurocs(det, X_test, normal, IMAGE_SCORES),
                  **baseline_aurocs(X_train[y_train == c], X_test, normal, seed)}
        flags.append(flag_rates(det, X_test[normal], X_test[~normal]))
        per_digit.append(result)
        print(f"  digit {c}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items() if k != "digit"), flush=True)
    methods = [k for k in per_digit[0] if k != "digit"]
    summary = {m: {"mean": float(np.mean([r[m] for r in per_digit])),
                   "worst": float(np.min([r[m] for r in per_digit]))} for m in methods}
    return {"row": "one-class digits", "summary": summary, "per_digit": per_digit,
            "fit_s_median": float(np.median(fit_s)),
            "flagged_normal_mean": float(np.mean([f["flagged_normal"] for f in flags])),
            "flagged_anomalies_mean": float(np.mean([f["flagged_anomalies"] for f in flags]))}


def paste_blobs(X, rng, sigma=0.8):
    """A bright Gaussian blob (peak = the data's maximum) at a random interior pixel of each image."""
    X = np.array(X, dtype=np.float64)
    n, h, w = X.shape[:3]
    peak = X.max()
    yy, xx = np.mgrid[:h, :w]
    for i in range(n):
        cy, cx = rng.randint(1, h - 1), rng.randint(1, w - 1)
        blob = peak * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
        X[i] = np.maximum(X[i], blob)
    return X


def faces(seed) -> tuple[dict, object, np.ndarray]:
    from skimage.data import lfw_subset

    images = lfw_subset()  # 100 faces then 100 non-faces, 25x25, floats in [0, 1]
    faces_, others = images[:100], images[100:]
    train, held_out = train_test_split(faces_, test_size=0.3, random_state=seed)
    X_test = np.concatenate([held_out, others])
    normal = np.r_[np.ones(len(held_out), bool), np.zeros(len(others), bool)]
    det = detector(seed).fit(train)
    row = {"row": "lfw faces vs non-faces", **synthaug_aurocs(det, X_test, normal, IMAGE_SCORES),
           **baseline_aurocs(train, X_test, normal, seed), **flag_rates(det, held_out, others)}
    return row, det, held_out


def defects(seed, faces_det, faces_held_out) -> list[dict]:
    rng = np.random.RandomState(seed)
    digits = load_digits()
    X_train, X_test, _, _ = train_test_split(
        digits.images, digits.target, test_size=0.25, random_state=0, stratify=digits.target)
    enlarge = np.ones((1, 3, 3))
    big_train, big_test = np.kron(X_train, enlarge), np.kron(X_test, enlarge)
    rows = []
    cases = (("digits 8x8 + blob", lambda: detector(seed).fit(X_train), X_train, X_test),
             ("digits 24x24 + blob", lambda: detector(seed).fit(big_train), big_train, big_test),
             ("lfw faces + blob", lambda: faces_det, None, faces_held_out))
    for name, fitted, train, clean in cases:
        det = fitted()
        X = np.concatenate([clean, paste_blobs(clean, rng)])
        normal = np.r_[np.ones(len(clean), bool), np.zeros(len(clean), bool)]
        row = {"row": f"local defects: {name}", **synthaug_aurocs(det, X, normal, IMAGE_SCORES)}
        if train is not None:
            row.update(baseline_aurocs(train, X, normal, seed))
        rows.append(row)
        print(f"  {row['row']}: topk {row['topk']:.4f}, reconstruction {row['reconstruction']:.4f}", flush=True)
    return rows


def tabular(seeds) -> list[dict]:
    bc, wine = load_breast_cancer(), load_wine()
    runs = {"breast_cancer": [], "wine": []}
    for seed in seeds:
        rng = np.random.RandomState(seed)
        benign, malignant = bc.data[bc.target == 1], bc.data[bc.target == 0]
        train, held_out = train_test_split(benign, test_size=0.3, random_state=seed)
        anomalies = malignant[rng.choice(len(malignant), 20, replace=False)]
        runs["breast_cancer"].append(tabular_run(train, held_out, anomalies, seed))
        per_class = []
        for c in range(3):
            train, held_out = train_test_split(wine.data[wine.target == c], test_size=0.3, random_state=seed)
            per_class.append(tabular_run(train, held_out, wine.data[wine.target != c], seed))
        runs["wine"].append({k: float(np.mean([r[k] for r in per_class])) for k in per_class[0]})
    rows = []
    for name, results in runs.items():
        row = {"row": f"tabular: {name}"}
        row.update({k: float(np.median([r[k] for r in results])) for k in results[0]})
        row["per_seed"] = results
        rows.append(row)
    return rows


def tabular_run(train, held_out, anomalies, seed) -> dict:
    X_test = np.concatenate([held_out, anomalies])
    normal = np.r_[np.ones(len(held_out), bool), np.zeros(len(anomalies), bool)]
    det = detector(seed).fit(train)
    return {**synthaug_aurocs(det, X_test, normal, TABULAR_SCORES),
            **baseline_aurocs(train, X_test, normal, seed, standardise=True),
            **flag_rates(det, held_out, anomalies)}


# -- report ------------------------------------------------------------------------------------------
METHODS = ["auto", "reconstruction", "normalized", "topk", "ssim", "likelihood", "PCA", "IsolationForest", "OneClassSVM"]


def table(results) -> str:
    def line(label, cells):
        return f"{label:34s} " + " ".join(f"{c:14.4f}" if c is not None else f"{'-':>14s}" for c in cells)

    lines = [f"{'row':34s} " + " ".join(f"{m[:14]:>14s}" for m in METHODS)]
    for r in results:
        if "summary" in r:
            for stat in ("mean", "worst"):
                lines.append(line(f"{r['row']} ({stat})", [r["summary"].get(m, {}).get(stat) for m in METHODS]))
        else:
            lines.append(line(r["row"], [r.get(m) for m in METHODS]))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=positive_int, default=3, help="seeds for the tabular rows (median)")
    parser.add_argument("--rows", type=names_from("digits", "lfw", "defects", "tabular"),
                        default="digits,lfw,defects,tabular")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results-anomaly.json")
    args = parser.parse_args()
    wanted = set(args.rows)
    start = time.perf_counter()
    results = []
    if "digits" in wanted:
        print("one-class digits ...", flush=True)
        results.append(one_class_digits(args.seed))
    if wanted & {"lfw", "defects"}:
        print("lfw faces ...", flush=True)
        face_row, face_det, face_held_out = faces(args.seed)
        if "lfw" in wanted:
            results.append(face_row)
        if "defects" in wanted:
            print("local defects ...", flush=True)
            results.extend(defects(args.seed, face_det, face_held_out))
    if "tabular" in wanted:
        print("tabular ...", flush=True)
        results.extend(tabular(range(args.seed, args.seed + args.repeats)))
    elapsed = time.perf_counter() - start
    print()
    print(table(results))
    print(f"(AUROC, normal data positive; synthaug = ReconstructionAnomalyDetector() with its default VAE, "
          f"one column per score; seed {args.seed}; {elapsed:.0f} s; machine: {platform.machine()}, "
          f"{os.cpu_count()} CPUs)")
    for r in results:
        if "flagged_normal" in r or "flagged_normal_mean" in r:
            fn = r.get("flagged_normal", r.get("flagged_normal_mean"))
            fa = r.get("flagged_anomalies", r.get("flagged_anomalies_mean"))
            print(f"contamination='auto' on {r['row']}: flags {fn:.1%} of held-out normal data, "
                  f"{fa:.1%} of anomalies")
    with open(args.out, "w") as fh:
        json.dump({"seed": args.seed, "repeats": args.repeats, "seconds": elapsed, "results": results}, fh,
                  indent=2)


if __name__ == "__main__":
    main()
