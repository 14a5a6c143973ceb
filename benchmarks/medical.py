"""Medical imaging: patch generators trained on CT slices, beside baselines, in Hounsfield units;
exact intensity round trips; validity of the written DICOM series.

Data
----
The CT slices shipped with pydicom, read with ``synthaug.integrations.medical.read_dicom`` (HU):
``CT_small.dcm`` (128×128), ``693_J2KI.dcm`` (512×512, JPEG 2000) and
``J2K_pixelrep_mismatch.dcm`` (512×512, JPEG 2000). Each slice is cut into 64×64 blocks; blocks
holding padding (values below -1024 HU, outside the scanned field) are dropped. The blocks are
split at random (per seed) into train and test halves, so no pixel is in both. Training
patches: 32×32 at stride 16 inside the train blocks (9 per block). Test patches: the four
non-overlapping 32×32 patches of each test block.

Rows (each compared with the test patches, with as many samples as test patches)
--------------------------------------------------------------------------------
- real (held-out floor): the non-overlapping patches of the train blocks — what a perfect
  generator of this data would score, given the sample sizes.
- Gaussian noise: independent pixels ~ N(mean, sd) of the training HU.
- shuffled intensities: the training pixels permuted across positions and patches (the pixel
  histogram exactly, no structure).
- synthaug VAE / GAN / Flow: ``MedicalAugmenter`` (soft-tissue window with compressed tails,
  exactly invertible) on the training patches, samples in int16 HU, no watermark.

Columns
-------
- W1 HU: 1-D Wasserstein distance between the pixel HU histograms (``synthaug.metrics.
  sliced_wasserstein`` on 1-D data is exact), in HU.
- W1 |grad|: the same for the gradient magnitude (HU per pixel) — local structure.
- SW patch: sliced Wasserstein distance between whole patches (1024-dim, 128 projections), HU.
Mean ± sd over seeds.

Also: round-trip errors of every window preset and the MR percentile normaliser (must be 0),
and checks of the synthetic DICOM series written from the GAN's samples.

Usage: python benchmarks/medical.py [--seeds 3] [--epochs-scale 1.0] [--out benchmarks/results-medical.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from _arguments import positive_int

CT_FILES = ("CT_small.dcm", "693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm")
BLOCK, PATCH = 64, 32


def load_blocks() -> np.ndarray:
    from pydicom.data import get_testdata_file
    from synthaug.integrations.medical import extract_patches, read_dicom

    blocks = []
    for name in CT_FILES:
        hu = read_dicom(get_testdata_file(name)).array
        cut, _ = extract_patches(hu, BLOCK)
        blocks.append(cut[cut.reshape(len(cut), -1).min(axis=1) >= -1024])
    return np.concatenate(blocks)


def split(blocks: np.ndarray, seed: int):
    from synthaug.integrations.medical import extract_patches

    order = np.random.default_rng(seed).permutation(len(blocks))
    train_blocks, test_blocks = blocks[order[: len(order) // 2]], blocks[order[len(order) // 2:]]
    train = extract_patches(train_blocks, PATCH, stride=PATCH // 2)[0]
    train_grid = extract_patches(train_blocks, PATCH)[0]
    test = extract_patches(test_blocks, PATCH)[0]
    return train, train_grid, test


def gradient_magnitude(X: np.ndarray) -> np.ndarray:
    X = X.astype(np.float64)
    return np.hypot(np.diff(X, axis=1)[:, :, :-1], np.diff(X, axis=2)[:, :-1, :])


def distances(real: np.ndarray, synthetic: np.ndarray, seed: int) -> dict:
    from synthaug.metrics import sliced_wasserstein

    return {
        "w1_hu": sliced_wasserstein(real.ravel(), synthetic.ravel()),
        "w1_grad": sliced_wasserstein(gradient_magnitude(real).ravel(), gradient_magnitude(synthetic).ravel()),
        "sw_patch": sliced_wasserstein(real.reshape(len(real), -1), synthetic.reshape(len(synthetic), -1),
                                       n_projections=128, random_state=seed),
    }


INTENSITY = "soft_tissue"  # MedicalAugmenter's default for CT: window W 400 / L 40, compressed tails


def generators(seed: int, scale: float) -> dict:
    from synthaug import GAN, VAE, Flow

    return {
        # decoder_output="mean": the smooth samples used for augmentation (the CLI's choice)
        "synthaug VAE": VAE(latent_dim=16, hidden_units=(128,), conv_filters=(16, 32), dropout=0.1,
                            decoder_output="mean", epochs=int(150 * scale), batch_size=32, random_state=seed),
        "synthaug GAN": GAN(latent_dim=32, hidden_units=(128, 128), conv_filters=(16, 32), epochs=int(300 * scale),
                            batch_size=32, random_state=seed),
        "synthaug Flow": Flow(n_layers=6, hidden_units=(256,), epochs=int(100 * scale), batch_size=32,
                              random_state=seed),
    }


def round_trips(blocks: np.ndarray) -> dict:
    from pydicom.data import get_testdata_file
    from synthaug.integrations.medical import (
        WINDOW_PRESETS,
        CTWindow,
        PercentileNormalizer,
        read_dicom,
    )

    ct = [read_dicom(get_testdata_file(name)).array for name in CT_FILES]
    every_int16 = np.arange(-32768, 32768, dtype=np.int16).reshape(1, -1)
    out = {}
    for preset in WINDOW_PRESETS:
        for outside in ("compress", "linear"):
            worst = 0
            for hu in ct + [every_int16]:
                t = CTWindow(preset, outside=outside).fit(hu)
                worst = max(worst, int(np.abs(t.inverse_transform(t.transform(hu)).astype(np.int64) - hu).max()))
            out[f"CTWindow({preset}, {outside})"] = worst
    mr = read_dicom(get_testdata_file("MR_small.dcm")).array
    for data, name in ((mr, "MR_small"), (every_int16, "all int16")):
        t = PercentileNormalizer().fit(data)
        out[f"PercentileNormalizer(1, 99) on {name}"] = int(np.abs(t.inverse_transform(t.transform(data)).astype(np.int64)
                                                                    - data).max())
    return out


def dicom_checks(augmenter, samples: np.ndarray, template) -> dict:
    import pydicom
    from synthaug.integrations.medical import read_dicom

    from synthaug.provenance import verify

    source = pydicom.dcmread(template, stop_before_pixels=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = augmenter.write(samples, tmp, template=template, seed=0)
        settings = pydicom.config.settings
        old = settings.reading_validation_mode
        settings.reading_validation_mode = pydicom.config.RAISE
        n_warnings, uids, names, ids = 0, [], set(), set()
        try:
            for path in paths:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    ds = pydicom.dcmread(path)
                    _ = ds.pixel_array  # decoding can warn too
                n_warnings += len(caught)
                uids.append(ds.SOPInstanceUID)
                names.add(str(ds.PatientName))
                ids.add(ds.PatientID)
        finally:
            settings.reading_validation_mode = old
        series = {ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID}
        original = {source.SOPInstanceUID, source.SeriesInstanceUID, source.StudyInstanceUID,
                    source.FrameOfReferenceUID}
        back = read_dicom(tmp).array
        records = verify(tmp)
    return {
        "files": len(paths),
        "warnings_on_strict_read": n_warnings,
        "sop_instance_uids_unique": len(set(uids)) == len(uids),
        "uids_new": not (set(uids) | series) & original,
        "patient_names": sorted(names),
        "original_patient_id_present": source.PatientID in ids,
        "hu_read_back_exact": bool(np.array_equal(back, samples)),
        "records_valid": sum(r.record_status == "valid" for r in records),
    }


def run(seeds: int, scale: float) -> dict:
    from synthaug.integrations.medical import MedicalAugmenter

    blocks = load_blocks()
    rows: dict[str, list] = {}
    fit_seconds: dict[str, list] = {}
    last = None
    for seed in range(seeds):
        train, train_grid, test = split(blocks, seed)
        rng = np.random.default_rng(seed)
        n = len(test)
        pick = rng.choice(len(train_grid), size=n, replace=len(train_grid) < n)
        candidates = {
            "real (held-out floor)": train_grid[pick],
            "Gaussian noise": np.rint(rng.normal(train.mean(), train.std(), size=test.shape)).astype(np.int16),
            "shuffled intensities": rng.permutation(train.ravel())[: test.size].reshape(test.shape),
        }
        for name, generator in generators(seed, scale).items():
            start = time.perf_counter()
            augmenter = MedicalAugmenter(generator, patch_size=None, intensity=INTENSITY, watermark=False,
                                         random_state=seed).fit(train)
            fit_seconds.setdefault(name, []).append(time.perf_counter() - start)
            candidates[name] = augmenter.generate(n, random_state=seed)
            if name == "synthaug GAN":
                last = (augmenter, candidates[name])
            print(f"seed {seed}: {name} fitted in {fit_seconds[name][-1]:.0f} s", flush=True)
        for name, synthetic in candidates.items():
            rows.setdefault(name, []).append(distances(test, synthetic, seed))
        print(f"seed {seed}: {len(train)} training patches, {n} test patches", flush=True)
    summary = {}
    for name, values in rows.items():
        summary[name] = {k: {"mean": float(np.mean([v[k] for v in values])), "sd": float(np.std([v[k] for v in values])),
                             "per_seed": [float(v[k]) for v in values]} for k in values[0]}
        if name in fit_seconds:
            summary[name]["fit_seconds"] = [round(s, 1) for s in fit_seconds[name]]
    from pydicom.data import get_testdata_file

    return {
        "data": {"files": list(CT_FILES), "tissue_blocks_64": len(blocks), "train_patches": len(train),
                 "test_patches": len(test)},
        "rows": summary,
        "round_trip_max_abs_error_hu": round_trips(blocks),
        "dicom": dicom_checks(last[0], last[1], get_testdata_file("CT_small.dcm")),
    }


def table(results: dict) -> str:
    lines = ["| samples | W1 HU | W1 grad (HU/px) | SW patch (HU) |", "|---|---|---|---|"]
    for name, row in results["rows"].items():
        cells = [f"{row[k]['mean']:.1f} ± {row[k]['sd']:.1f}" for k in ("w1_hu", "w1_grad", "sw_patch")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("round trip, max |error| in HU: " + ", ".join(
        f"{k}: {v}" for k, v in results["round_trip_max_abs_error_hu"].items()))
    lines.append("DICOM: " + ", ".join(f"{k}={v}" for k, v in results["dicom"].items()))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=positive_int, default=3)
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every generator's epochs")
    parser.add_argument("--out", default="benchmarks/results-medical.json")
    args = parser.parse_args()
    start = time.perf_counter()
    results = run(args.seeds, args.epochs_scale)
    results.update(seeds=args.seeds, epochs_scale=args.epochs_scale, seconds=round(time.perf_counter() - start, 1),
                   machine=f"{platform.machine()}, {os.cpu_count()} CPUs, shared and loaded",
                   command=f"python benchmarks/medical.py --seeds {args.seeds} --epochs-scale {args.epochs_scale}")
    print(table(results))
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=1)
    print(f"wrote {args.out} ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
