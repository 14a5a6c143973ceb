"""A one-page PNG of an :class:`~synthaug.evaluation.EvaluationReport`.

Images: a grid of real training images beside a grid of synthetic ones. Tabular data:
histograms of real and synthetic values for up to 12 features (those whose distributions differ
most, when there are more). Beside either, the metric table as text.

Drawn with matplotlib's object-oriented API on an Agg canvas: no pyplot, no change to the
global backend, safe in servers and threads. The PNG is rendered to bytes and written with
:func:`synthaug.io.atomic_write_bytes`.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from synthaug.evaluation import EvaluationReport

__all__ = ["plot_report", "render_report"]

_MAX_HISTOGRAMS = 12
_GRID_COLUMNS = 10


def _image_grid(X: np.ndarray, lo: float, hi: float, n_cols: int = _GRID_COLUMNS) -> np.ndarray:
    """uint8 grid of images (n, H, W[, C]) on the real data's range, grey (2-D) or RGB (3-D)."""
    from synthaug.io import tile_images, to_display_uint8

    X = np.asarray(X)
    if X.ndim == 4:
        X = X[..., :3] if X.shape[-1] >= 3 else X[..., 0]
    return tile_images(to_display_uint8(X, lo, hi), n_cols)


def _draw_images(fig, spec, report: EvaluationReport) -> None:
    real, synthetic = report.real_samples, report.synthetic_samples
    lo, hi = float(np.min(real)), float(np.max(real))
    panels = spec.subgridspec(1, 2, wspace=0.05)
    for i, (title, X, labels) in enumerate((
        ("real (training set)", real, report.real_labels),
        ("synthetic", synthetic, report.synthetic_labels),
    )):
        ax = fig.add_subplot(panels[0, i])
        grid = _image_grid(X, lo, hi)
        grey = dict(cmap="gray", vmin=0, vmax=255) if grid.ndim == 2 else {}
        ax.imshow(grid, interpolation="nearest", **grey)
        suffix = ", sorted by label" if labels is not None else ""
        ax.set_title(f"{title}: {len(X)} samples{suffix}", fontsize=10)
        ax.set_axis_off()


def _histogram_features(real: np.ndarray, synthetic: np.ndarray) -> list[int]:
    """Indices of the features to draw: all up to 12, else the 12 whose marginals differ most."""
    d = real.shape[1]
    if d <= _MAX_HISTOGRAMS:
        return list(range(d))
    from scipy.stats import wasserstein_distance

    scale = real.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    gaps = [wasserstein_distance(real[:, j] / scale[j], synthetic[:, j] / scale[j]) for j in range(d)]
    return sorted(np.argsort(gaps)[::-1][:_MAX_HISTOGRAMS].tolist())


def _draw_histograms(fig, spec, report: EvaluationReport) -> None:
    real = np.asarray(report.real_samples, dtype=np.float64).reshape(len(report.real_samples), -1)
    synthetic = np.asarray(report.synthetic_samples, dtype=np.float64).reshape(len(report.synthetic_samples), -1)
    chosen = _histogram_features(real, synthetic)
    names = report.feature_names or [f"feature {j}" for j in range(real.shape[1])]
    n_cols = min(4, len(chosen))
    n_rows = -(-len(chosen) // n_cols)
    cells = spec.subgridspec(n_rows, n_cols, hspace=0.6, wspace=0.3)
    for k, j in enumerate(chosen):
        ax = fig.add_subplot(cells[k // n_cols, k % n_cols])
        both = np.concatenate([real[:, j], synthetic[:, j]])
        lo, hi = float(both.min()), float(both.max())
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 31)
        ax.hist(real[:, j], bins=bins, density=True, alpha=0.5, color="tab:blue", label="real")
        ax.hist(synthetic[:, j], bins=bins, density=True, alpha=0.5, color="tab:orange", label="synthetic")
        ax.set_title(names[j][:30], fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_yticks([])
        if k == 0:
            ax.legend(fontsize=7, frameon=False)
    if real.shape[1] > len(chosen):
        fig.text(0.02, 0.01, f"{len(chosen)} of {real.shape[1]} features: those whose real and synthetic "
                 "distributions differ most (1-D Wasserstein distance, standardised)", fontsize=8)


def render_report(report: EvaluationReport, *, dpi: int = 100) -> bytes:
    """Render the report page as PNG bytes.

    Parameters
    ----------
    report : EvaluationReport
        The result of :func:`synthaug.evaluation.evaluate`.
    dpi : int, default=100
        Resolution.

    Returns
    -------
    png : bytes
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if report.real_samples is None or report.synthetic_samples is None:
        raise ValueError("the report holds no samples to draw (real_samples or synthetic_samples is None)")
    table = report.table()
    n_lines = table.count("\n") + 1
    if report.is_image:
        fig = Figure(figsize=(15, max(5.5, 0.16 * n_lines + 1.0)))
        outer = fig.add_gridspec(1, 2, width_ratios=[2.0, 1.0], wspace=0.05, left=0.02, right=0.99)
        _draw_images(fig, outer[0, 0], report)
    else:
        fig = Figure(figsize=(16, max(7.0, 0.16 * n_lines + 1.0)))
        outer = fig.add_gridspec(1, 2, width_ratios=[2.2, 1.0], wspace=0.1, left=0.03, right=0.99, bottom=0.07)
        _draw_histograms(fig, outer[0, 0], report)
    ax = fig.add_subplot(outer[0, 1])
    ax.set_axis_off()
    ax.text(0.0, 1.0, table, family="monospace", fontsize=7.5, va="top", ha="left", transform=ax.transAxes)
    fig.suptitle("synthaug evaluation", fontsize=12)
    FigureCanvasAgg(fig)  # attach an Agg canvas to this figure only: no pyplot, no global backend
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def plot_report(report: EvaluationReport, path, *, overwrite: bool = False) -> Path:
    """Write the report page to a PNG file, atomically.

    Parameters
    ----------
    report : EvaluationReport
    path : str or Path
        File to write.
    overwrite : bool, default=False
        Replace an existing file; otherwise an existing file raises ``FileExistsError``.

    Returns
    -------
    path : Path
    """
    from synthaug.io import atomic_write_bytes

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    return atomic_write_bytes(path, render_report(report))
