"""Experiment for the README's imbalanced breast-cancer rows: one normalizing flow per class as
the oversampler, against SMOTE, with the benchmark's protocol (benchmarks/augmentation.py: the
malignant class cut to 10 %, stratified 5-fold CV per draw, resampling on training folds only,
the benchmark's two classifiers).

A flow fitted on the ~32 malignant rows of a training fold, with no validation split, is close
to a smoothed version of those rows: its samples stay near them, as SMOTE's do, but spread in
every direction the rows vary in rather than along segments between neighbours.

``--filter`` adds a row whose flow draws 4x the missing malignant rows and keeps a row when at
least 3 of its 5 nearest real training rows are malignant (the cleaning rule of
benchmarks/experiments/filtered_conditional.py), up to the missing count.

``--temperatures 0.7,0.85`` adds a row per temperature: the flow's samples drawn as
``forward(T * z)`` (Flow.generate's ``temperature``), which keeps them nearer the rows' modes.

Settings were chosen on draws 4 and 5 (``--draws 4,5``; ``noise_std`` 0, 0.1 and 0.3 tried) and
the README reports draws 0-3, the benchmark's.

Not a shipped feature. Usage: python benchmarks/experiments/flow_oversampling.py [--draws 0,1,2,3]
       [--flow-params JSON] [--filter] [--temperatures T1,T2]
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

import augmentation as bench  # noqa: E402
from synthaug import Flow  # noqa: E402
from synthaug.integrations.sklearn import SyntheticAugmenter  # noqa: E402

K, VOTES, OVERSAMPLE = 5, 3, 4
FLOW = dict(n_layers=4, hidden_units=(64,), epochs=300, batch_size=16, validation_fraction=0.0, noise_std=0.0)


class FlowSampler:
    """One flow on the minority class (label 1), sampled at ``temperature``, up to balance. With
    ``filtered``, 4x the missing rows are drawn and those that pass the neighbour filter are added,
    up to the missing count."""

    def __init__(self, params, seed, temperature=1.0, filtered=False):
        self.params, self.seed, self.temperature, self.filtered = params, seed, temperature, filtered

    def fit_resample(self, X, y):
        from sklearn.neighbors import KNeighborsClassifier

        need = int((y == 0).sum() - (y == 1).sum())
        flow = Flow(random_state=self.seed, **self.params).fit(X[y == 1])
        new = flow.generate(need * (OVERSAMPLE if self.filtered else 1), random_state=self.seed,
                            temperature=self.temperature)
        if self.filtered:
            votes = KNeighborsClassifier(K).fit(X, y).predict_proba(new)[:, 1] * K
            new = new[votes >= VOTES - 1e-9][:need]
        return np.vstack([X, new]), np.r_[y, np.ones(len(new), int)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", default="0,1,2,3")
    parser.add_argument("--flow-params", type=json.loads, default=None)
    parser.add_argument("--filter", action="store_true")
    parser.add_argument("--temperatures", default="")
    args = parser.parse_args()
    from imblearn.over_sampling import SMOTE

    params = FLOW if args.flow_params is None else args.flow_params
    draws = [int(d) for d in args.draws.split(",")]
    samplers = {
        "SMOTE": lambda s: SMOTE(random_state=s),
        "synthaug (one Flow per class)": lambda s: SyntheticAugmenter(Flow(random_state=s, **params),
                                                                       fit_per_class=True, random_state=s),
    }
    if args.filter:
        samplers["synthaug (one Flow per class, filtered)"] = lambda s: FlowSampler(params, s, filtered=True)
    for t in [float(t) for t in args.temperatures.split(",") if t]:
        samplers[f"synthaug (one Flow per class, T={t:g})"] = (
            lambda s, t=t: FlowSampler(params, s, temperature=t))
    started = time.perf_counter()
    scores = bench.sampler_scores(samplers, draws)
    print(f"\nFlow {params}, draws {draws}, {time.perf_counter() - started:.0f} s; means over all folds")
    print("| classifier | resampling | balanced accuracy | F1 (malignant) |")
    print("| --- | --- | ---: | ---: |")
    for (c_name, s_name), row in scores.items():
        print(f"| {c_name} | {s_name} | {np.mean(row['balanced_accuracy']):.4f} | {np.mean(row['f1']):.4f} |")


if __name__ == "__main__":
    main()
