"""The data splits and held-out metrics behind the pretrained models' cards.

``scripts/train_pretrained.py`` trains on the training part of each split and writes the numbers
:func:`heldout_metrics` returns into the card; the tests recompute them from the shipped file.
Every dataset ships inside a pip package (scikit-learn, scikit-image, pydicom): nothing is
downloaded. NumPy and scikit-learn only at import; the rest inside the functions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Each pretrained model's data: its name here, in DATASETS.
DATA_OF = {
    "digits-vae": "digits",
    "digits-gan": "digits",
    "digits-flow": "digits",
    "digits-pixelcnn": "digits",
    "lfw-faces": "lfw",
    "ct-patches": "ct",
}

# The CT slices shipped with pydicom, cut as benchmarks/medical.py cuts them (seed 0).
CT_FILES = ("CT_small.dcm", "693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm")
CT_BLOCK, CT_PATCH = 64, 32


@dataclass
class Split:
    """A train/test split of one dataset; ``y_*`` are ``None`` for unlabelled data."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    description: str


def digits() -> Split:
    """scikit-learn's digits, the project's digits protocol split (1347 train, 450 test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)
    return Split(X_train, X_test, y_train, y_test,
                 "train_test_split(images, target, test_size=0.25, random_state=0, stratify=target)")


def lfw() -> Split:
    """scikit-image's ``lfw_subset`` (100 faces, 100 non-faces, 25×25) as uint8, labelled
    ``"face"`` / ``"non-face"``; a stratified 75/25 split (150 train, 50 test)."""
    from skimage.data import lfw_subset
    from sklearn.model_selection import train_test_split

    X = np.rint(lfw_subset() * 255).astype(np.uint8)
    y = np.array(["face"] * 100 + ["non-face"] * 100)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    return Split(X_train, X_test, y_train, y_test,
                 "uint8(rint(lfw_subset() * 255)); train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)")


def ct() -> Split:
    """32×32 int16 HU patches of pydicom's CT test slices.

    Each slice is cut into 64×64 blocks; blocks holding padding (below -1024 HU) are dropped; the
    blocks are split at random (seed 0) into halves, so no pixel is in both. Train: 32×32
    patches at stride 16 inside the train blocks. Test: the non-overlapping 32×32 patches of the
    test blocks. (The split of ``benchmarks/medical.py`` with seed 0.)
    """
    from pydicom.data import get_testdata_file

    from synthaug.integrations.medical import extract_patches, read_dicom

    blocks = []
    for name in CT_FILES:
        hu = read_dicom(get_testdata_file(name)).array
        cut, _ = extract_patches(hu, CT_BLOCK)
        blocks.append(cut[cut.reshape(len(cut), -1).min(axis=1) >= -1024])
    blocks = np.concatenate(blocks)
    order = np.random.default_rng(0).permutation(len(blocks))
    train_blocks, test_blocks = blocks[order[: len(order) // 2]], blocks[order[len(order) // 2:]]
    X_train = extract_patches(train_blocks, CT_PATCH, stride=CT_PATCH // 2)[0]
    X_test = extract_patches(test_blocks, CT_PATCH)[0]
    return Split(X_train, X_test, None, None,
                 f"{', '.join(CT_FILES)} read in HU; 64×64 blocks without padding split in halves "
                 "(numpy default_rng(0) permutation); train: 32×32 patches at stride 16 in the train "
                 "blocks; test: non-overlapping 32×32 patches of the test blocks")


DATASETS = {"digits": digits, "lfw": lfw, "ct": ct}


def load_split(name: str) -> Split:
    """The split of the pretrained model ``name`` (e.g. ``"digits-vae"``)."""
    return DATASETS[DATA_OF[name]]()


def _standardise(X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    return (X - reference.mean()) / reference.std()


def _draw(model, n: int, seed: int):
    out = model.generate(n, random_state=seed, watermark=False)
    return out if isinstance(out, tuple) else (out, None)


def heldout_metrics(model, split: Split, *, seed: int = 0, likelihood: bool = True) -> dict:
    """The card's held-out numbers for a fitted generator.

    Parameters
    ----------
    model : GenerativeEstimator
        A fitted synthaug generator.
    split : Split
        Its data split (:func:`load_split`).
    seed : int, default=0
        ``random_state`` of every draw and of the TSTR classifier.
    likelihood : bool, default=True
        Also the test bits per dimension where the model has ``score_samples``.

    Returns
    -------
    metrics : dict
        ``mmd_test`` : unbiased MMD² (:func:`synthaug.metrics.mmd`, RBF, median heuristic) between
        ``len(X_test)`` samples (``random_state=seed``, no watermark) and the real test set, on pixels
        standardised by the training set's mean and sd; ``mmd_test_real_floor``: the same between a
        seeded random subset of the real training set and the test set. ``frechet_test`` /
        ``frechet_test_real_floor``: :func:`synthaug.metrics.frechet_distance` on the same pixels
        (only where there are more test samples than pixels). ``tstr_accuracy`` /
        ``trtr_accuracy`` (labelled data): :func:`synthaug.metrics.tstr` with ``len(X_train)``
        synthetic samples, tested on the real test set. ``test_bits_per_dim``:
        ``-mean(score_samples(X_test, y_test)) / (D ln 2)``.
    """
    from synthaug.metrics import frechet_distance, mmd, tstr

    X_train, X_test = split.X_train, split.X_test
    n_test = len(X_test)
    X_syn, _ = _draw(model, n_test, seed)
    rng = np.random.RandomState(seed)
    X_floor = X_train[rng.choice(len(X_train), size=n_test, replace=False)]
    A, B, C = (_standardise(X, X_train) for X in (X_test, X_syn, X_floor))
    out = {"n_test": int(n_test), "mmd_test": mmd(A, B), "mmd_test_real_floor": mmd(A, C)}
    if n_test > A.shape[1]:
        out["frechet_test"] = frechet_distance(A, B)
        out["frechet_test_real_floor"] = frechet_distance(A, C)
    if split.y_train is not None:
        X_lab, y_lab = _draw(model, len(X_train), seed)
        result = tstr((X_lab, y_lab), X_train, split.y_train, X_test, split.y_test, random_state=seed)
        out["tstr_accuracy"] = float(result["tstr_accuracy"])
        out["trtr_accuracy"] = float(result["trtr_accuracy"])
    if likelihood and hasattr(model, "score_samples"):
        log_p = model.score_samples(X_test, split.y_test) if split.y_test is not None else model.score_samples(X_test)
        out["test_bits_per_dim"] = float(-np.mean(log_p) / (np.prod(X_test.shape[1:]) * np.log(2)))
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}
