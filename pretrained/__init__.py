"""Pretrained generators shipped with synthaug, each with a model card.

Small models trained by ``scripts/train_pretrained.py`` on data shipped in pip packages
(scikit-learn's digits, scikit-image's LFW crops, pydicom's CT test slices). Each one is a
``<name>.synthaug`` file (the format of :meth:`synthaug.GenerativeEstimator.save`) beside its card,
``<name>.json`` (data, licence, training command, versions, seed, sha256, held-out metrics,
intended use and limits) and ``<name>.md`` (the same, for people).

>>> import synthaug.pretrained
>>> sorted(synthaug.pretrained.list())                   # doctest: +SKIP
['ct-patches', 'digits-flow', 'digits-gan', 'digits-pixelcnn', 'digits-vae', 'lfw-faces']
>>> model = synthaug.pretrained.load("digits-vae")        # doctest: +SKIP
>>> X, y = model.generate(100, random_state=0)           # doctest: +SKIP

The files are found through :mod:`importlib.resources`, so they work from an installed wheel.
:func:`list` and :func:`card` read JSON only (no TensorFlow import); :func:`load` checks the
file's sha256 against its card before loading it with :func:`synthaug.load` (safe mode, never
unpickles).
"""
from __future__ import annotations

import builtins
import hashlib
import json
from importlib import resources

__all__ = ["list", "card", "card_text", "load", "names"]

_CARD_SUFFIX = ".json"
_MODEL_SUFFIX = ".synthaug"


def _files():
    return resources.files(__name__)


def names() -> builtins.list[str]:
    """Names of the shipped pretrained generators (those with both a model file and a card), sorted.

    Returns
    -------
    names : list of str
    """
    found = []
    for entry in _files().iterdir():
        name = entry.name
        if name.endswith(_CARD_SUFFIX) and not name.startswith((".", "_")):
            stem = name[: -len(_CARD_SUFFIX)]
            if _files().joinpath(stem + _MODEL_SUFFIX).is_file():
                found.append(stem)
    return sorted(found)


def _check_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str naming a pretrained generator; got {type(name).__name__}")
    available = names()
    if name not in available:
        listing = ", ".join(available) if available else "none (the package holds no pretrained files)"
        raise ValueError(f"no pretrained generator named {name!r}; available: {listing}")
    return name


def card(name: str) -> dict:
    """The model card of a pretrained generator, as a dict (its ``<name>.json``).

    Parameters
    ----------
    name : str
        A name from :func:`names`, e.g. ``"digits-vae"``.

    Returns
    -------
    card : dict
        Keys include ``description``, ``model_type``, ``file``, ``sha256``, ``size_bytes``,
        ``sample_shape``, ``dtype``, ``classes``, ``data`` (source, licence, split),
        ``training`` (command, seed, parameters, versions), ``metrics`` (on held-out data),
        ``intended_use`` and ``limits``.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the available names).
    """
    _check_name(name)
    return json.loads(_files().joinpath(name + _CARD_SUFFIX).read_text(encoding="utf-8"))


def card_text(name: str) -> str:
    """The model card of a pretrained generator as Markdown text (its ``<name>.md``).

    Parameters
    ----------
    name : str
        A name from :func:`names`.

    Returns
    -------
    text : str

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the available names).
    """
    _check_name(name)
    return _files().joinpath(name + ".md").read_text(encoding="utf-8")


def list() -> dict[str, str]:  # noqa: A001  the public name the issue asks for: synthaug.pretrained.list()
    """The shipped pretrained generators and their one-line descriptions.

    Reads the cards only: no TensorFlow import.

    Returns
    -------
    models : dict
        ``{name: description}``, sorted by name.

    Examples
    --------
    >>> import synthaug.pretrained
    >>> for name, text in synthaug.pretrained.list().items():   # doctest: +SKIP
    ...     print(name, "-", text)
    """
    return {name: card(name)["description"] for name in names()}


def load(name: str):
    """Load a pretrained generator by name.

    The file's sha256 is checked against the card before anything is loaded; the model is then
    read from those verified bytes by :func:`synthaug.load` (Keras ``safe_mode``, no pickle).

    Parameters
    ----------
    name : str
        A name from :func:`names`, e.g. ``"digits-vae"``.

    Returns
    -------
    model : GenerativeEstimator
        The fitted generator (``generate``, ``score_samples`` where the family has one, ...).

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the available names), or if the file's sha256
        differs from the card's (a damaged or altered file is never loaded).

    Examples
    --------
    >>> import synthaug.pretrained
    >>> model = synthaug.pretrained.load("digits-vae")       # doctest: +SKIP
    >>> X, y = model.generate(10, y=3, random_state=0)       # doctest: +SKIP
    """
    info = card(name)
    data = _files().joinpath(info["file"]).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != info["sha256"]:
        raise ValueError(f"pretrained file {info['file']} has sha256 {digest}, but its card says {info['sha256']}: "
                         "the file is damaged or was altered; reinstall synthaug")
    from synthaug.base import load as load_model

    return load_model(data)
