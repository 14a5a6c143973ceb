"""The provenance step of ``GenerativeEstimator.generate``: watermark image samples by default."""
from __future__ import annotations

import warnings

import numpy as np

from synthaug.provenance.record import model_fingerprint, payload_for
from synthaug.provenance.watermark import MIN_SIZE, PAYLOAD_MIN_PIXELS, embed


def is_markable(X) -> bool:
    """Whether samples are images big enough for a pixel watermark: (n, H, W[, C]), H, W >= 32."""
    return (isinstance(X, np.ndarray) and X.ndim in (3, 4) and min(X.shape[1:3]) >= MIN_SIZE
            and (X.ndim == 3 or X.shape[-1] <= 4))


def carries_payload(X) -> bool:
    """Whether ``mark_samples`` writes the model's id into the mark: images of at least
    :data:`~synthaug.provenance.watermark.PAYLOAD_MIN_PIXELS` (192×192) pixels. Smaller images
    get a zero-bit mark, all of whose energy goes to detection."""
    return is_markable(X) and X.shape[1] * X.shape[2] >= PAYLOAD_MIN_PIXELS


def mark_samples(estimator, X, key=None):
    """``X`` with the watermark embedded, carrying the model's 32-bit id as payload (images of
    192×192 pixels and more; smaller ones get a zero-bit mark, see :func:`carries_payload`).

    Tabular samples, DataFrames and images smaller than 32×32 come back unchanged (they rely on
    the provenance record alone); so do images with 32 grey levels or fewer (e.g. digits,
    label maps), which a mark would visibly change.
    """
    if not is_markable(X):
        return X
    payload = payload_for(model_fingerprint(estimator)) if carries_payload(X) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unmarkable images: documented in generate
        return embed(X, key=key, payload=payload)
