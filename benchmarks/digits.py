"""Digits protocol of ARCHITECTURE.md: test bits/dim of each model beside a GaussianMixture
baseline measured in the same run, sample quality, fit time and generation speed.

Sample quality (every model, on ``len(X_train)`` samples drawn in the training class balance
with ``random_state=0``; the reference row puts the real training split in place of samples, with
the SVC's accuracy on the real test split as its label agreement):

- ``label_agreement``, ``modes``: an RBF ``SVC`` (scikit-learn defaults) trained on the real
  training split labels the samples; agreement with the requested labels and the classes it
  finds (``metrics.mode_coverage``).
- ``fd``: Fréchet distance to the real test split on ``ClassifierFeatures`` (fitted on the real
  training split, ``random_state=0``).
- ``precision``/``recall``/``density``/``coverage``: k=5, the real test split against as many
  samples (the first 450).
- ``tstr``: the same ``SVC`` trained on the samples, tested on the real test split (``trtr``: trained
  on the real training split).

Usage: python benchmarks/digits.py [--repeats 3] [--models vae,flow,gan] [--gan-params '{"epochs": 400}']
       [--out benchmarks/results-digits.json]
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
from _arguments import names_from, positive_int

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


class Judge:
    """The real-data side of the sample-quality numbers, fitted once per run."""

    def __init__(self, X_train, y_train, X_test, y_test):
        from sklearn.svm import SVC

        from synthaug.evaluation import ClassifierFeatures

        self.data = (X_train, y_train, X_test, y_test)
        self.classifier = SVC().fit(X_train.reshape(len(X_train), -1), y_train)
        self.features = ClassifierFeatures(random_state=0).fit(X_train, y_train)
        self.F_test = self.features.transform(X_test)

    def quality(self, X_syn, y_syn):
        from sklearn.svm import SVC

        from synthaug import metrics

        X_train, y_train, X_test, y_test = self.data
        flat = lambda A: A.reshape(len(A), -1)
        modes = metrics.mode_coverage(flat(X_syn), self.classifier, y=y_syn)
        F_syn = self.features.transform(X_syn)
        prdc = metrics.precision_recall_density_coverage(self.F_test, F_syn[:len(X_test)])
        usefulness = metrics.tstr((flat(X_syn), y_syn), flat(X_train), y_train, flat(X_test), y_test, estimator=SVC())
        return {"label_agreement": modes["label_agreement"], "modes": modes["n_covered"],
                "fd": metrics.frechet_distance(self.F_test, F_syn), **prdc,
                "tstr": usefulness["tstr_accuracy"], "trtr": usefulness["trtr_accuracy"]}


def run_model(name, X_train, y_train, X_test, y_test, seed, params=None, judge=None):
    from synthaug import GAN, VAE, Flow

    cls = {"vae": VAE, "flow": Flow, "gan": GAN}[name]
    start = time.perf_counter()
    model = cls(random_state=seed, **(params or {})).fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    model.generate(100, random_state=0)  # warm-up
    times = []
    for rep in range(3):
        start = time.perf_counter()
        model.generate(10000, random_state=rep)
        times.append(time.perf_counter() - start)
    gen = 10000 / float(np.median(times))
    row = {"fit_s": fit_s, "samples_per_s": gen, "epochs": len(next(iter(model.history_.values())))}
    if hasattr(model, "score_samples"):
        row["test_bpd"] = bits_per_dim(model.score_samples(X_test, y_test))
    if "n_dequantization" in model.get_params():
        # the plain dequantisation bound (K = 1, as the GaussianMixture row) from the same fit
        k = model.n_dequantization
        row["test_bpd_plain"] = bits_per_dim(model.set_params(n_dequantization=1).score_samples(X_test, y_test))
        model.set_params(n_dequantization=k)
    if judge is not None:
        row.update(judge.quality(*model.generate(len(X_train), random_state=0)))
        if name == "vae" and model.decoder_output == "sample":
            # The smooth decoder mean, from the same fit: the usual choice for augmentation.
            model.set_params(decoder_output="mean")
            smooth = judge.quality(*model.generate(len(X_train), random_state=0))
            row.update({f"mean_{k}": v for k, v in smooth.items()})
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--out", default="benchmarks/results-digits.json")
    parser.add_argument("--models", type=names_from("vae", "flow", "gan"), default="vae,flow",
                        help="comma-separated: vae, flow, gan")
    parser.add_argument("--vae-params", type=json.loads, default={},
                        help='JSON of VAE parameters to change from the defaults, e.g. \'{"patience": 10}\'')
    parser.add_argument("--flow-params", type=json.loads, default={}, help="JSON of Flow parameters")
    parser.add_argument("--gan-params", type=json.loads, default={}, help="JSON of GAN parameters")
    args = parser.parse_args()
    X_train, X_test, y_train, y_test = split()
    gmm_bpd, gmm_cfg = gmm_baseline(X_train, X_test)
    judge = Judge(X_train, y_train, X_test, y_test)
    # The real training split in place of samples (shuffled: precision/recall use its first 450);
    # its label agreement would be the SVC's training accuracy, so the test accuracy stands there.
    order = np.random.RandomState(0).permutation(len(X_train))
    real = judge.quality(X_train[order], y_train[order])
    real["label_agreement"] = float(np.mean(judge.classifier.predict(X_test.reshape(len(X_test), -1)) == y_test))
    rows = [{"model": f"GaussianMixture ({gmm_cfg})", "test_bpd": gmm_bpd, "bound": "dequantised"},
            {"model": "real training split (reference)", **real}]
    labels = {"vae": ("VAE (conditional, conv, IWAE k=1000)", "IWAE", args.vae_params),
              "flow": ("Flow (conditional, RealNVP)", "dequantised", args.flow_params),
              "gan": ("GAN (conditional, WGAN-GP, EMA)", None, args.gan_params)}
    for name in args.models:
        title, bound, params = labels[name]
        runs = [run_model(name, X_train, y_train, X_test, y_test, seed, params, judge) for seed in range(args.repeats)]
        med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
        row = {"model": title, **{k: v for k, v in med.items() if not k.startswith("mean_")}, "params": params,
               "per_seed_fit_s": [r["fit_s"] for r in runs]}
        if bound is not None:
            row.update(bound=bound, per_seed_bpd=[r["test_bpd"] for r in runs])
        if "test_bpd_plain" in runs[0]:
            row["per_seed_bpd_plain"] = [r["test_bpd_plain"] for r in runs]
        row["per_seed"] = {k: [r[k] for r in runs] for k in ("label_agreement", "recall", "coverage", "tstr", "fd")}
        rows.append(row)
        if any(k.startswith("mean_") for k in med):
            rows.append({"model": f"{title}, decoder_output='mean'", "same_fit_as": title,
                         **{k[5:]: v for k, v in med.items() if k.startswith("mean_")}})
    columns = [("test_bpd", "bits/dim", ".3f"), ("test_bpd_plain", "K=1", ".3f"), ("fit_s", "fit s", ".1f"), ("samples_per_s", "samples/s", ".0f"),
               ("label_agreement", "agree", ".3f"), ("modes", "modes", ".0f"), ("fd", "FD", ".2f"),
               ("precision", "prec", ".3f"), ("recall", "recall", ".3f"), ("coverage", "cover", ".3f"),
               ("tstr", "TSTR", ".3f")]
    print(f"{'model':48s}" + "".join(f" {title:>9s}" for _, title, _ in columns))
    for r in rows:
        cells = "".join(f" {format(r[k], fmt):>9s}" if k in r else f" {'n/a':>9s}" for k, _, fmt in columns)
        print(f"{r['model'][:48]:48s}{cells}")
    print(f"(median of {args.repeats} seeds; TRTR {real['trtr']:.3f}; machine: {platform.machine()}, "
          f"{os.cpu_count()} CPUs)")
    with open(args.out, "w") as fh:
        json.dump({"protocol": "digits", "repeats": args.repeats, "cpus": os.cpu_count(), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
