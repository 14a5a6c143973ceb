"""Digits protocol of ARCHITECTURE.md: test bits/dim of each model beside a GaussianMixture
baseline measured in the same run, fit time and generation speed.

Usage: python benchmarks/digits.py [--repeats 3] [--out benchmarks/results-digits.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from sklearn.datasets import load_digits
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split

D = 64
LEVELS = 17


def split():
    d = load_digits()
    return train_test_split(d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)


def bits_per_dim(log_prob_nats):
    return float(-np.mean(log_prob_nats) / (D * np.log(2)))


def gmm_baseline(X_train, X_test, seed=0):
    """Best GaussianMixture of a small grid on dequantised data (x + u) / 17; discrete bound in bits/dim."""
    rng = np.random.RandomState(seed)
    deq = lambda X: (X.reshape(len(X), -1) + rng.uniform(size=(len(X), D))) / LEVELS
    A, B = deq(X_train), deq(X_test)
    n_val = len(A) // 5
    best = None
    for k in (1, 5, 10, 20):
        for cov in ("full", "diag"):
            gm = GaussianMixture(k, covariance_type=cov, reg_covar=1e-3, random_state=seed).fit(A[n_val:])
            val = gm.score(A[:n_val])
            if best is None or val > best[0]:
                best = (val, k, cov)
    gm = GaussianMixture(best[1], covariance_type=best[2], reg_covar=1e-3, random_state=seed).fit(A)
    # log P(x) >= E_u log p((x+u)/17) - D log 17
    return bits_per_dim(gm.score_samples(B) - D * np.log(LEVELS)), f"k={best[1]},{best[2]}"


def run_model(name, X_train, y_train, X_test, y_test, seed, params=None):
    from synthaug import VAE, Flow

    cls = {"vae": VAE, "flow": Flow}[name]
    start = time.perf_counter()
    vae = cls(random_state=seed, **(params or {})).fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    bpd = bits_per_dim(vae.score_samples(X_test, y_test))
    vae.generate(100, random_state=0)  # warm-up
    times = []
    for rep in range(3):
        start = time.perf_counter()
        vae.generate(10000, random_state=rep)
        times.append(time.perf_counter() - start)
    gen = 10000 / float(np.median(times))
    return {"test_bpd": bpd, "fit_s": fit_s, "samples_per_s": gen, "epochs": len(vae.history_["loss"])}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results-digits.json")
    parser.add_argument("--models", default="vae,flow", help="comma-separated: vae, flow")
    parser.add_argument("--vae-params", type=json.loads, default={},
                        help='JSON of VAE parameters to change from the defaults, e.g. \'{"patience": 10}\'')
    parser.add_argument("--flow-params", type=json.loads, default={}, help="JSON of Flow parameters")
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = split()
    gmm_bpd, gmm_cfg = gmm_baseline(X_train, X_test)
    rows = [{"model": f"GaussianMixture ({gmm_cfg})", "test_bpd": gmm_bpd, "bound": "dequantised"}]
    labels = {"vae": ("VAE (conditional, conv, IWAE k=1000)", "IWAE", args.vae_params),
              "flow": ("Flow (conditional, RealNVP)", "dequantised", args.flow_params)}
    for name in args.models.split(","):
        title, bound, params = labels[name]
        runs = [run_model(name, X_train, y_train, X_test, y_test, seed, params) for seed in range(args.repeats)]
        med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
        rows.append({"model": title, **med, "bound": bound, "params": params,
                     "per_seed_bpd": [r["test_bpd"] for r in runs]})
    print(f"{'model':40s} {'test bits/dim':>14s} {'fit s':>8s} {'samples/s':>10s}")
    for r in rows:
        print(f"{r['model']:40s} {r['test_bpd']:14.3f} {r.get('fit_s', float('nan')):8.1f} "
              f"{r.get('samples_per_s', float('nan')):10.0f}")
    print(f"(median of {args.repeats} seeds; machine: {platform.machine()}, {os.cpu_count()} CPUs)")
    with open(args.out, "w") as fh:
        json.dump({"protocol": "digits", "repeats": args.repeats, "cpus": os.cpu_count(), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
