"""Declarative checks of estimator parameters, run at the start of ``fit``.

Each estimator lists its constraints in a ``_parameter_constraints`` dict (as scikit-learn's
estimators do) and calls :meth:`GenerativeEstimator._validate_params`; the messages name the
parameter, what it must be and the value given. scikit-learn's own machinery for this is
private API, hence this small public-API version.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (strings)."""

    values: tuple

    def __init__(self, *values):
        object.__setattr__(self, "values", values)

    def check(self, name: str, value) -> None:
        if not isinstance(value, str) or value not in self.values:
            choices = ", ".join(map(repr, self.values[:-1])) + f" or {self.values[-1]!r}"
            raise ValueError(f"{name} must be {choices}; got {value!r}")


@dataclass(frozen=True)
class Interval:
    """A real (or, with ``integer=True``, integer) value between ``low`` and ``high``.

    ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``; ``None`` bounds are open-ended.
    """

    low: float | None
    high: float | None
    closed: str = "both"
    integer: bool = False

    def _describe(self) -> str:
        if self.integer and self.high is None and self.closed in ("both", "left") and self.low in (0, 1):
            return "a positive integer" if self.low == 1 else "a non-negative integer"
        if self.high is None:
            return f"{'>=' if self.closed in ('both', 'left') else '>'} {self.low}"
        if self.low is None:
            return f"{'<=' if self.closed in ('both', 'right') else '<'} {self.high}"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        return f"in {left}{self.low}, {self.high}{right}"

    def check(self, name: str, value) -> None:
        ok = _is_int(value) if self.integer else _is_real(value)
        if ok and self.low is not None:
            ok = value >= self.low if self.closed in ("both", "left") else value > self.low
        if ok and self.high is not None:
            ok = value <= self.high if self.closed in ("both", "right") else value < self.high
        if not ok:  # also catches NaN, which fails every comparison
            raise ValueError(f"{name} must be {self._describe()}; got {value!r}")


@dataclass(frozen=True)
class PositiveInts:
    """A non-empty tuple (or list) of positive integers, such as layer widths."""

    def check(self, name: str, value) -> None:
        try:
            items = tuple(value)
        except TypeError:
            items = ()
        if not items or not all(_is_int(u) and u > 0 for u in items):
            raise ValueError(f"{name} must be a non-empty tuple of positive integers; got {value!r}")


@dataclass(frozen=True)
class Verbosity:
    """A bool or a non-negative integer, as scikit-learn's and Keras' ``verbose`` take."""

    def check(self, name: str, value) -> None:
        if not (isinstance(value, bool) or (_is_int(value) and value >= 0)):
            raise ValueError(f"{name} must be a bool or a non-negative integer; got {value!r}")


VERBOSE = Verbosity()


@dataclass(frozen=True)
class PositiveFinite:
    """A real number > 0 and finite (a temperature, a PSNR in decibels)."""

    def check(self, name: str, value) -> None:
        if not (_is_real(value) and 0 < value < np.inf):  # NaN fails both comparisons
            raise ValueError(f"{name} must be a positive, finite number; got {value!r}")


@dataclass(frozen=True)
class OddPositiveInt:
    """A positive odd integer (a masked convolution's size: it needs a centre pixel)."""

    def check(self, name: str, value) -> None:
        POSITIVE_INT.check(name, value)
        if value % 2 == 0:
            raise ValueError(f"{name} must be odd (a masked kernel is centred on its pixel); got {value!r}")


POSITIVE_FINITE = PositiveFinite()
ODD_POSITIVE_INT = OddPositiveInt()
POSITIVE_INT = Interval(1, None, integer=True)
NON_NEGATIVE_INT = Interval(0, None, integer=True)
POSITIVE = Interval(0, None, closed="neither")
NON_NEGATIVE = Interval(0, None)
FRACTION = Interval(0.0, 1.0, closed="left")  # [0, 1)


def validate_params(estimator, constraints: dict) -> None:
    """Raise ``ValueError`` naming the first parameter of ``estimator`` that breaks ``constraints``."""
    for name, constraint in constraints.items():
        constraint.check(name, getattr(estimator, name))
