"""Held-out log-likelihood on standardised tabular data shipped with scikit-learn: the Flow (each
``--flow-types``, otherwise its defaults) beside the best GaussianMixture of a small grid, measured
in the same run on the same splits.

Usage: python benchmarks/density.py [--repeats 3] [--flow-types realnvp,maf] [--flow-params '{}']
       [--out benchmarks/results-density.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from _arguments import positive_int

DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine}


def split(name, seed):
    X = DATASETS[name]().data
    X_train, X_test = train_test_split(X, test_size=0.3, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test)


def best_gmm(X_train, X_test, seed):
    """GaussianMixture chosen on a validation fifth of the training data, refitted on all of it."""
    n_val = len(X_train) // 5
    grid = [(k, cov) for k in (1, 2, 3, 5) for cov in ("full", "diag")]
    scores = {cfg: GaussianMixture(cfg[0], covariance_type=cfg[1], random_state=seed)
              .fit(X_train[n_val:]).score(X_train[:n_val]) for cfg in grid}
    k, cov = max(scores, key=scores.get)
    gm = GaussianMixture(k, covariance_type=cov, random_state=seed).fit(X_train)
    return float(gm.score(X_test)), f"k={k},{cov}"


def run_flow(X_train, X_test, seed, params):
    from synthaug import Flow

    start = time.perf_counter()
    flow = Flow(random_state=seed, **params).fit(X_train)
    return float(flow.score_samples(X_test).mean()), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--out", default="benchmarks/results-density.json")
    parser.add_argument("--flow-types", default="realnvp,maf", help="comma-separated Flow flow_type values")
    parser.add_argument("--flow-params", type=json.loads, default={}, help="JSON of other Flow parameters")
    args = parser.parse_args()
    flow_types = args.flow_types.split(",")
    rows = []
    for name in DATASETS:
        gmm, cfgs = [], []
        flow = {t: [] for t in flow_types}
        fit_s = {t: [] for t in flow_types}
        for seed in range(args.repeats):
            X_train, X_test = split(name, seed)
            score, cfg = best_gmm(X_train, X_test, seed)
            gmm.append(score)
            cfgs.append(cfg)
            for t in flow_types:
                score, seconds = run_flow(X_train, X_test, seed, {**args.flow_params, "flow_type": t})
                flow[t].append(score)
                fit_s[t].append(seconds)
        rows.append({"data": name, "gmm_loglik": float(np.median(gmm)), "gmm_configs": cfgs, "per_seed_gmm": gmm,
                     **{f"flow_{t}_loglik": float(np.median(flow[t])) for t in flow_types},
                     **{f"flow_{t}_fit_s": float(np.median(fit_s[t])) for t in flow_types},
                     **{f"per_seed_flow_{t}": flow[t] for t in flow_types}})
    header = "".join(f" {'Flow ' + t:>13s} {'fit s':>6s}" for t in flow_types)
    print(f"{'data':15s} {'GMM loglik':>11s}{header}")
    for r in rows:
        cells = "".join(f" {r[f'flow_{t}_loglik']:13.2f} {r[f'flow_{t}_fit_s']:6.1f}" for t in flow_types)
        print(f"{r['data']:15s} {r['gmm_loglik']:11.2f}{cells}")
    print(f"(held-out mean log-likelihood, nats per sample, standardised data; median of {args.repeats} "
          f"splits; machine: {platform.machine()}, {os.cpu_count()} CPUs)")
    with open(args.out, "w") as fh:
        json.dump({"repeats": args.repeats, "flow_types": flow_types, "flow_params": args.flow_params,
                   "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
