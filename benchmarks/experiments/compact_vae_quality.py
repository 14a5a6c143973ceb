"""Experiment behind the README's tf.data "a cheaper generator" bullet: what the compact VAE of
``benchmarks/tf_data.py --compact-vae-params`` costs in fit, beside the default VAE.

Both VAEs are fitted as that benchmark fits them (``decoder_output="mean"``, ``epochs=100``,
``random_state=0``, early stopping) on its digits and lfw-faces training splits; printed: epochs,
and the test split's mean ``score_samples`` (the IWAE bound on log p(x | y)), as bits per
dimension of the 17 digit levels and as nats per pixel for the continuous faces (higher is better
there). Usage: python benchmarks/experiments/compact_vae_quality.py [--vae-params JSON]
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

import tf_data as bench  # noqa: E402
from synthaug import VAE  # noqa: E402

COMPACT = {"conv_filters": [8, 16], "hidden_units": [128]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vae-params", type=json.loads, default=COMPACT, help="JSON of the compact VAE's parameters")
    args = parser.parse_args()
    for data, split in (("digits", bench.digits_split), ("faces", bench.faces_split)):
        X, X_test, y, y_test = split()
        for name, params in (("default", {}), ("compact", args.vae_params)):
            vae = VAE(decoder_output="mean", epochs=100, random_state=0, **params).fit(X, y)
            per_dim = np.mean(vae.score_samples(X_test, y_test)) / X_test[0].size
            score = f"{-per_dim / np.log(2):.4f} bits/dim" if data == "digits" else f"{per_dim:.4f} nats/pixel"
            print(f"{data} {name} {params}: {len(vae.history_['loss'])} epochs, test {score}", flush=True)


if __name__ == "__main__":
    main()
