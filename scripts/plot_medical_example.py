"""Draw docs/medical-example.png: real CT patches beside synthetic ones from a patch generator.

A ``MedicalAugmenter`` (GAN by default, the benchmark's configuration) is fitted on 32×32
patches of the CT slices shipped with pydicom (``CT_small.dcm``, ``693_J2KI.dcm``,
``J2K_pixelrep_mismatch.dcm``; 64×64 blocks holding padding dropped, half of the blocks for
training, as ``benchmarks/medical.py`` does for seed 0). The figure shows one real slice with a
patch outlined, real held-out patches, synthetic patches (all in the soft-tissue window, W 400 /
L 40, with a HU colour bar) and the two HU histograms.

Usage: python scripts/plot_medical_example.py [--model gan|vae|flow] [--epochs-scale 1.0]
       [--out docs/medical-example.png]
"""
from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import medical as bench
from synthaug.integrations.medical import MedicalAugmenter, read_dicom

from synthaug.io import atomic_write_bytes

LEVEL, WIDTH = 40, 400


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["gan", "vae", "flow"], default="gan")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="as in benchmarks/medical.py")
    parser.add_argument("--out", default="docs/medical-example.png")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from pydicom.data import get_testdata_file

    train, _, test = bench.split(bench.load_blocks(), args.seed)
    generator = {name.split()[-1].lower(): g for name, g in bench.generators(args.seed, args.epochs_scale).items()}[args.model]
    augmenter = MedicalAugmenter(generator, patch_size=None, intensity=bench.INTENSITY, watermark=False,
                                 random_state=args.seed).fit(train)
    synthetic = augmenter.generate(len(test), random_state=args.seed)
    slice_ = read_dicom(get_testdata_file("693_J2KI.dcm")).array[0]
    rng = np.random.default_rng(args.seed)
    real_shown = test[rng.choice(len(test), 8, replace=False)]
    synthetic_shown = synthetic[:8]

    fig = plt.figure(figsize=(12, 6))
    grid = fig.add_gridspec(2, 6, width_ratios=[1.6, 1, 1, 1, 1, 0.08], hspace=0.3, wspace=0.1)
    window = {"cmap": "gray", "vmin": LEVEL - WIDTH / 2, "vmax": LEVEL + WIDTH / 2}
    ax = fig.add_subplot(grid[0, 0])
    shown = ax.imshow(slice_, **window)
    ax.add_patch(Rectangle((224, 96), 32, 32, fill=False, edgecolor="tab:orange", linewidth=1.5))
    ax.set_title("real slice (693_J2KI.dcm, 512×512),\nbox: a 32×32 patch", fontsize=9)
    ax.axis("off")
    for row, (patches, label) in enumerate(((real_shown, "real held-out patches"),
                                            (synthetic_shown, f"synthetic patches ({type(generator).__name__})"))):
        for k in range(4):
            sub = grid[row, 1 + k].subgridspec(2, 1, hspace=0.04)
            for j in range(2):
                axp = fig.add_subplot(sub[j])
                axp.imshow(patches[2 * k + j], **window)
                axp.axis("off")
                if k == 0 and j == 0:
                    axp.set_title(label, fontsize=9, loc="left")
    bar = fig.colorbar(shown, cax=fig.add_subplot(grid[:, 5]))
    bar.set_label(f"HU (soft-tissue window W {WIDTH} / L {LEVEL})", fontsize=9)
    inset = fig.add_subplot(grid[1, 0])
    bins = np.linspace(-1100, 1400, 101)
    inset.hist(test.ravel(), bins=bins, density=True, histtype="step", label="real (held out)")
    inset.hist(synthetic.ravel(), bins=bins, density=True, histtype="step", label="synthetic")
    inset.set_yscale("log")
    inset.set_xlabel("HU", fontsize=8)
    inset.set_title("HU histograms (log density)", fontsize=9)
    inset.tick_params(labelsize=7)
    inset.legend(fontsize=7, frameon=False)
    fig.suptitle("synthaug patch generator on pydicom's CT slices: not real patients, not for clinical use",
                 fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(args.out, buf.getvalue())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
