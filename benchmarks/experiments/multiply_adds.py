"""Multiply-adds per sample, counted from the layer shapes (not measured), behind the README's
tf.data "why, in multiply-adds" bullet: the VAE decoder (default and the compact VAE of
``benchmarks/tf_data.py --compact-vae-params``) and the benchmark's classifier (forward pass),
on digits (8x8) and lfw faces (25x25).

A dense layer costs inputs x outputs; a convolution kh x kw x in x out per output pixel; a
transposed convolution kh x kw x in x out per *input* pixel (each input pixel spreads one kernel
over the larger output). Usage: python benchmarks/experiments/multiply_adds.py
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tf_data as bench  # noqa: E402
from synthaug import VAE  # noqa: E402

COMPACT = {"conv_filters": (8, 16), "hidden_units": (128,)}


def layer_macs(layer, input_shape) -> int:
    """Multiply-adds of one Dense / Conv2D / Conv2DTranspose layer for one sample."""
    kernel = int(np.prod(layer.kernel.shape))
    if isinstance(layer, keras.layers.Dense):
        return kernel
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return input_shape[1] * input_shape[2] * kernel
    output_shape = layer.compute_output_shape(input_shape)
    return output_shape[1] * output_shape[2] * kernel


def decoder_macs(decoder) -> int:
    macs = layer_macs(decoder.dense, None) + layer_macs(decoder.to_map, None)
    shape = (1,) + decoder.base_shape
    for conv in decoder.convs:
        macs += layer_macs(conv, shape)
        shape = conv.compute_output_shape(shape)
    h, w, _ = decoder.image_shape
    return macs + layer_macs(decoder.out, (1, h, w, shape[-1]))


def classifier_macs(shape, n_classes) -> int:
    _, model = bench.classifier(shape=shape, n_classes=n_classes)
    body = model.layers[-1]
    current, macs = (1,) + shape + (1,), 0
    for layer in body.layers:
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            macs += layer_macs(layer, current)
        current = layer.compute_output_shape(current)
    return macs


def main():
    for data, split in (("digits", bench.digits_split), ("faces", bench.faces_split)):
        X, _, y, _ = split()
        for name, params in (("default", {}), ("compact", COMPACT)):
            vae = VAE(decoder_output="mean", epochs=1, random_state=0, **params).fit(X, y)
            print(f"{data}: {name} VAE decoder {decoder_macs(vae.model_.decoder) / 1e6:.3f} M multiply-adds per sample")
        macs = classifier_macs(tuple(X.shape[1:]), len(np.unique(y)))
        print(f"{data}: classifier forward pass {macs / 1e6:.3f} M multiply-adds per sample")


if __name__ == "__main__":
    main()
