"""Experiment behind the README's note on CTGAN-style mode-specific normalisation (#7): does
encoding each numeric column as (mode indicator, value within the mode) help a VAE reproduce the
columns' distributions on real tables?

Each numeric column of the training split gets a ``BayesianGaussianMixture`` (Dirichlet process,
up to 10 modes, modes with weight > 0.005 kept, as CTGAN does); a column with two modes or more
becomes ``(x - mu_k) / (4 sigma_k)`` and a one-hot of its most probable mode ``k``, and decodes by
the largest entry of that block. ``VAE(hidden_units=(128, 128), latent_dim=8)`` is fitted on the
plain columns ("standard") and on the encoded ones ("modes"); the score is the mean over columns
of the 1-D Wasserstein distance between generated and held-out rows, each column divided by its
training standard deviation (lower is better; "train vs test" is the floor real data gets).

Not a shipped feature (the README says why). Usage:
python benchmarks/experiments/mode_normalisation.py
"""
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from scipy.stats import wasserstein_distance  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_wine  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import BayesianGaussianMixture  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from synthaug import VAE  # noqa: E402


# Some breast_cancer columns' mixtures stop at max_iter; the modes they have are still used.
warnings.filterwarnings("ignore", category=ConvergenceWarning)


def fit_modes(x, seed):
    mixture = BayesianGaussianMixture(n_components=10, weight_concentration_prior_type="dirichlet_process",
                                      weight_concentration_prior=1e-3, max_iter=200, random_state=seed)
    mixture.fit(x[:, None])
    keep = mixture.weights_ > 0.005
    return mixture, keep, mixture.means_[keep, 0], np.sqrt(mixture.covariances_[keep, 0, 0])


def encode(X, seed):
    specs, blocks = [], []
    for j in range(X.shape[1]):
        mixture, keep, mu, sd = fit_modes(X[:, j], seed)
        if len(mu) < 2:
            specs.append(None)
            blocks.append(X[:, j:j + 1])
            continue
        k = mixture.predict_proba(X[:, j:j + 1])[:, keep].argmax(1)
        specs.append((mu, sd))
        blocks.append(np.column_stack([(X[:, j] - mu[k]) / (4 * sd[k]), np.eye(len(mu))[k]]))
    return np.hstack(blocks), specs


def decode(Z, specs):
    columns, j = [], 0
    for spec in specs:
        if spec is None:
            columns.append(Z[:, j])
            j += 1
            continue
        mu, sd = spec
        k = Z[:, j + 1:j + 1 + len(mu)].argmax(1)
        columns.append(Z[:, j] * 4 * sd[k] + mu[k])
        j += 1 + len(mu)
    return np.column_stack(columns)


def mean_w1(A, B, scale):
    return float(np.mean([wasserstein_distance(A[:, j] / scale[j], B[:, j] / scale[j]) for j in range(A.shape[1])]))


def main():
    print(f"{'data':<14}{'decoder':<8}{'seed':>5}{'standard':>10}{'modes':>8}{'multi-modal columns':>21}"
          f"{'train vs test':>15}")
    for name, loader in [("wine", load_wine), ("breast_cancer", load_breast_cancer)]:
        X, _ = loader(return_X_y=True)
        X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)
        scale = X_train.std(0)
        floor = mean_w1(X_train, X_test, scale)
        for output in ("mean", "sample"):
            for seed in (0, 1):
                def synthetic(Z):
                    vae = VAE(hidden_units=(128, 128), latent_dim=8, decoder_output=output, random_state=seed)
                    return vae.fit(Z).generate(len(X_test), random_state=0)

                standard = mean_w1(synthetic(X_train), X_test, scale)
                Z, specs = encode(X_train, seed)
                modes = mean_w1(decode(synthetic(Z), specs), X_test, scale)
                n_multi = sum(s is not None for s in specs)
                print(f"{name:<14}{output:<8}{seed:>5}{standard:>10.4f}{modes:>8.4f}{n_multi:>14} of {X.shape[1]:<4}"
                      f"{floor:>15.4f}", flush=True)


if __name__ == "__main__":
    main()
