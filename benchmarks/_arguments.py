"""argparse types shared by the benchmark scripts: counts of at least one, and lists of known names.

A count of 0 would leave a script nothing to take a median of (a crash, or NaN in the JSON), and
a misspelt name in a list would silently drop its row.
"""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An ``int`` >= 1 (repeats, seeds, runs, draws)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def names_from(*known: str):
    """An argparse type for a comma-separated list of names out of ``known``."""
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown name(s) {unknown or [text]}; choose from {', '.join(known)}")
        return names
    return parse
