"""Watermark benchmark of issue #8: invisibility, robustness, false positives and cost.

Images: scikit-image's camera, astronaut, coffee, retina and immunohistochemistry, and pydicom's
512×512 CT (``693_J2KI.dcm``, stored as uint16 = HU + 1024), each whole and as centre crops of
256×256 and 128×128 (each crop marked as an image of its own).

For each: PSNR and SSIM of the marked image against the original (8-bit scale for uint8, the
image's own value range for the CT), and the watermark's p-value after each attack; detected
means p <= 1e-6; the payload column counts attacks after which the 32-bit id was read back.
Images are marked as ``generate`` marks its outputs: with the id as payload from 192×192 pixels
up, a zero-bit mark below (the 128×128 crops).
Attacks on 8-bit images: JPEG quality 50 (Pillow), Gaussian noise sigma 5, brightness x1.2 / x0.8,
contrast x1.2 / x0.8 around the mean, crop 10 % of each side's length (centre: 5 % off each
border; corner: 10 % off top and left; no resize back), resize to 50 % and back (Pillow bicubic),
90° rotation, left-right flip, and JPEG 50 + corner crop + rotation together. On the CT the same,
scaled to its value range (noise sigma 5/255 of the range); its JPEG goes through an 8-bit
full-range window and back (a 16-bit JPEG does not exist), which also quantises it to 256 levels.

Other data: random 128×128 (6 per image) and 256×256 (4 per image) crops of ten scikit-image
images under every attack, and JPEG 50 of the 128×128 CT crop through 8-bit windows shifted by
-4..4 HU.

False positives: 1,000+ unmarked real patches (64, 128, 256 px) from 20 scikit-image images, the
whole images and the same patches marked with another key, all tested with the default key.

Cost: embed and detect of 512×512 camera (grey) and astronaut (colour), one thread (threadpoolctl
and OMP_NUM_THREADS=1), median of 31 runs, wall-clock and CPU time (``time.thread_time``); a
numpy FFT of a 512×512 complex array is timed alike as a yardstick of the machine's speed.

Baseline, if ``invisible-watermark`` is installed: its DWT-DCT method with a 32-bit message on the
same uint8 images and attacks. Its message counts as detected at FPR 1e-6 when at least 30 of its
32 bits are right (binomial tail 1.2e-7 for a random image); its p-value is that tail.

Usage: python benchmarks/watermark.py [--out benchmarks/results-watermark.json] [--quick]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from synthaug.provenance import DEFAULT_FPR, detect, embed  # noqa: E402
from synthaug.provenance.watermark import PAYLOAD_MIN_PIXELS  # noqa: E402

PAYLOAD = 0x5A17A5E0
NAMES = ["camera", "astronaut", "coffee", "retina", "immunohistochemistry"]
FP_SOURCES = ["astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel",
              "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket",
              "text", "logo"]


# -- images ---------------------------------------------------------------------------------------
def load_ct():
    """pydicom's 512×512 CT as uint16 (HU + 1024), or None with the reason."""
    try:
        import pydicom
        import pydicom.data

        ds = pydicom.dcmread(pydicom.data.get_testdata_file("693_J2KI.dcm"))
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    except Exception as exc:  # pydicom, its test file or the JPEG 2000 decoder missing
        return None, f"{type(exc).__name__}: {exc}"
    return np.clip(hu + 1024, 0, None).astype(np.uint16), ""


def centre_crop(x, size):
    h, w = x.shape[:2]
    y0, x0 = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(x[y0:y0 + size, x0:x0 + size])


# -- attacks --------------------------------------------------------------------------------------
def _span(x):
    return 255.0 if x.dtype == np.uint8 else float(x.max() - x.min())


def _to_dtype(x, like):
    info = np.iinfo(like.dtype)
    return np.clip(np.rint(x), info.min, info.max).astype(like.dtype)


def jpeg(x, quality=50):
    if x.dtype == np.uint8:
        buf = io.BytesIO()
        Image.fromarray(x).save(buf, format="JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    lo, span = float(x.min()), _span(x)
    eight = np.clip(np.rint((x - lo) / span * 255), 0, 255).astype(np.uint8)
    back = jpeg(eight, quality).astype(np.float64) / 255 * span + lo
    return _to_dtype(back, x)


def noise(x, sigma=5.0, seed=0):
    rng = np.random.default_rng(seed)
    return _to_dtype(x + rng.normal(0, sigma * _span(x) / 255, x.shape), x)


def brightness(x, factor):
    return _to_dtype(x.astype(np.float64) * factor, x)


def contrast(x, factor):
    mean = x.mean()
    return _to_dtype((x.astype(np.float64) - mean) * factor + mean, x)


def crop(x, fraction=0.1, where="centre"):
    h, w = x.shape[:2]
    dh, dw = int(h * fraction), int(w * fraction)
    if where == "centre":
        return np.ascontiguousarray(x[dh // 2: h - (dh - dh // 2), dw // 2: w - (dw - dw // 2)])
    return np.ascontiguousarray(x[dh:, dw:])


def resize_back(x, factor=0.5):
    h, w = x.shape[:2]
    if x.dtype == np.uint8:
        small = Image.fromarray(x).resize((int(w * factor), int(h * factor)), Image.BICUBIC)
        return np.asarray(small.resize((w, h), Image.BICUBIC))
    small = Image.fromarray(x.astype(np.float32), mode="F").resize((int(w * factor), int(h * factor)), Image.BICUBIC)
    return _to_dtype(np.asarray(small.resize((w, h), Image.BICUBIC)), x)


ATTACKS = {
    "none": lambda x: x,
    "jpeg50": jpeg,
    "noise5": noise,
    "bright+20%": lambda x: brightness(x, 1.2),
    "bright-20%": lambda x: brightness(x, 0.8),
    "contrast+20%": lambda x: contrast(x, 1.2),
    "contrast-20%": lambda x: contrast(x, 0.8),
    "crop10%-centre": crop,
    "crop10%-corner": lambda x: crop(x, where="corner"),
    "resize50%": resize_back,
    "rot90": lambda x: np.ascontiguousarray(np.rot90(x)),
    "flip": lambda x: np.ascontiguousarray(x[:, ::-1]),
    "jpeg50+crop+rot90": lambda x: np.ascontiguousarray(np.rot90(jpeg(crop(x, where="corner")))),
}


# -- measurements ---------------------------------------------------------------------------------
def quality(original, marked):
    span = _span(original)
    channel_axis = -1 if original.ndim == 3 else None
    return (float(peak_signal_noise_ratio(original, marked, data_range=span)),
            float(structural_similarity(original, marked, data_range=span, channel_axis=channel_axis)))


def robustness_rows(images):
    rows = []
    for name, image in images.items():
        for size in (None, 256, 128):
            original = image if size is None else centre_crop(image, size)
            # As generate() marks its outputs: a zero-bit mark below 192×192 pixels.
            payload = PAYLOAD if original.shape[0] * original.shape[1] >= PAYLOAD_MIN_PIXELS else None
            marked = embed(original[None], payload=payload)[0]
            psnr, ssim = quality(original, marked)
            attacks = {}
            for attack, fn in ATTACKS.items():
                result = detect([fn(marked)])[0]
                attacks[attack] = {"p_value": result.p_value, "detected": result.detected,
                                   "payload_ok": result.payload == PAYLOAD, "transform": result.transform}
            rows.append({"image": name, "shape": list(original.shape), "dtype": str(original.dtype),
                         "crop": size, "payload": payload is not None, "psnr_db": round(psnr, 2),
                         "ssim": round(ssim, 4), "attacks": attacks})
            print(f"  {name:22s} {'x'.join(map(str, original.shape[:2])):9s} PSNR {psnr:5.1f} SSIM {ssim:.4f} "
                  f"detected {sum(a['detected'] for a in attacks.values())}/{len(attacks)} "
                  f"payload {sum(a['payload_ok'] for a in attacks.values())}/{len(attacks)}", flush=True)
    return rows


OTHER_IMAGES = NAMES + ["chelsea", "coins", "rocket", "hubble_deep_field", "cat"]


def random_crops(size, per_image, seed=1):
    """The robustness check on other data: random size×size crops of ten scikit-image images, each
    marked as generate() marks it; per attack, on how many of the marked crops it was detected."""
    rng = np.random.default_rng(seed)
    counts, misses, n_marked, n_flat = {a: 0 for a in ATTACKS}, [], 0, 0
    for name in OTHER_IMAGES:
        image = getattr(skdata, name)()
        for _ in range(per_image):
            y0, x0 = rng.integers(0, image.shape[0] - size), rng.integers(0, image.shape[1] - size)
            crop_ = np.ascontiguousarray(image[y0:y0 + size, x0:x0 + size])
            payload = PAYLOAD if size * size >= PAYLOAD_MIN_PIXELS else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                marked = embed(crop_[None], payload=payload)[0]
            if np.array_equal(marked, crop_):
                n_flat += 1  # too flat to carry a mark
                continue
            n_marked += 1
            for attack, fn in ATTACKS.items():
                result = detect([np.ascontiguousarray(fn(marked))])[0]
                counts[attack] += result.detected
                if not result.detected:
                    misses.append({"image": name, "y0": int(y0), "x0": int(x0), "attack": attack,
                                   "p_value": result.p_value})
    print(f"  random {size}x{size} crops: {n_marked} marked ({n_flat} too flat); detected per attack "
          + ", ".join(f"{a} {c}" for a, c in counts.items()), flush=True)
    return {"size": size, "n_marked": n_marked, "n_too_flat": n_flat, "detected": counts, "misses": misses}


def ct_jpeg_windows(ct, size=128, offsets=range(-4, 5)):
    """JPEG 50 of the centre size×size CT crop through an 8-bit window shifted by each offset (in
    stored units, i.e. HU): p-values, to show how much that attack depends on the window."""
    marked = embed(centre_crop(ct, size)[None])[0]
    span = _span(marked)
    p_values = []
    for offset in offsets:
        lo = float(marked.min()) + offset
        window = np.clip(np.rint((marked.astype(np.float64) - lo) * 255 / span), 0, 255).astype(np.uint8)
        p_values.append(detect([jpeg(window)])[0].p_value)
    print("  CT 128x128 JPEG 50 over window offsets: " + ", ".join(f"{p:.0e}" for p in p_values), flush=True)
    return {"offsets": list(offsets), "p_values": p_values, "detected": sum(p <= DEFAULT_FPR for p in p_values)}


def real_patches(seed=0, per_image=18):
    rng = np.random.default_rng(seed)
    patches = []
    for name in FP_SOURCES:
        image = getattr(skdata, name)()
        for size in (64, 128, 256):
            if min(image.shape[:2]) < size:
                continue
            for _ in range(per_image):
                y0 = rng.integers(0, image.shape[0] - size + 1)
                x0 = rng.integers(0, image.shape[1] - size + 1)
                patches.append(np.ascontiguousarray(image[y0:y0 + size, x0:x0 + size]))
    return patches


def false_positives(quick=False):
    patches = real_patches(per_image=6 if quick else 18)
    wholes = [getattr(skdata, name)() for name in FP_SOURCES]
    unmarked = detect(patches + wholes)
    p = np.array([r.p_value for r in unmarked])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a few flat patches cannot be marked
        other = detect(embed(patches, key="another key", payload=1))
    p_other = np.array([r.p_value for r in other])
    return {
        "unmarked": {"n": len(p), "n_patches": len(patches), "detected": int(sum(r.detected for r in unmarked)),
                     "min_p_value": float(p.min()), "fraction_p_below_0.01": float(np.mean(p <= 0.01)),
                     "fraction_p_below_0.1": float(np.mean(p <= 0.1))},
        "marked_with_another_key": {"n": len(p_other), "detected": int(sum(r.detected for r in other)),
                                    "min_p_value": float(p_other.min())},
    }


def timing(runs=31):
    images = {"camera 512x512 grey": skdata.camera(), "astronaut 512x512 colour": skdata.astronaut()}
    out = {}
    with threadpool_limits(1):
        yardstick = np.random.default_rng(0).random((512, 512)) + 0j
        fft_cpu = []
        for _ in range(runs):
            t = time.thread_time()
            np.fft.fft2(yardstick)
            fft_cpu.append(time.thread_time() - t)
        for name, image in images.items():
            batch = image[None]
            embed(batch, payload=1)
            detect(batch)
            samples = {"embed_wall": [], "embed_cpu": [], "detect_wall": [], "detect_cpu": []}
            for _ in range(runs):
                w, c = time.perf_counter(), time.thread_time()
                marked = embed(batch, payload=1)
                samples["embed_wall"].append(time.perf_counter() - w)
                samples["embed_cpu"].append(time.thread_time() - c)
                w, c = time.perf_counter(), time.thread_time()
                detect(marked)
                samples["detect_wall"].append(time.perf_counter() - w)
                samples["detect_cpu"].append(time.thread_time() - c)
            med = {k: 1000 * float(np.median(v)) for k, v in samples.items()}
            med["total_wall"] = med["embed_wall"] + med["detect_wall"]
            med["total_cpu"] = med["embed_cpu"] + med["detect_cpu"]
            out[name] = {k: round(v, 2) for k, v in med.items()}
    out["yardstick_numpy_fft2_512x512_complex_cpu_ms"] = round(1000 * float(np.median(fft_cpu)), 2)
    out["runs"] = runs
    return out


def binomial_tail(k, n=32):
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n


def baseline_invisible_watermark(images):
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError as exc:
        return {"skipped": f"invisible-watermark not installed ({exc})"}
    message = b"synA"
    truth = np.unpackbits(np.frombuffer(message, np.uint8))
    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", message)
    decoder = WatermarkDecoder("bytes", 32)
    rows = []
    for name, image in images.items():
        if image.dtype != np.uint8:
            continue
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
        marked = encoder.encode(np.ascontiguousarray(rgb[..., ::-1]), "dwtDct")[..., ::-1]  # it works in BGR
        marked = np.ascontiguousarray(marked)
        psnr, ssim = quality(rgb, marked)
        attacks = {}
        for attack in ("none", "jpeg50", "noise5", "bright+20%", "crop10%-centre", "crop10%-corner", "resize50%",
                       "rot90"):
            attacked = np.ascontiguousarray(ATTACKS[attack](marked))
            bits = np.unpackbits(np.frombuffer(decoder.decode(np.ascontiguousarray(attacked[..., ::-1]), "dwtDct"),
                                               np.uint8))
            correct = int(np.sum(bits[:32] == truth))
            attacks[attack] = {"bits_correct": correct, "p_value": binomial_tail(correct),
                               "detected": binomial_tail(correct) <= DEFAULT_FPR}
        rows.append({"image": name, "psnr_db": round(psnr, 2), "ssim": round(ssim, 4), "attacks": attacks})
        print(f"  invisible-watermark {name:22s} PSNR {psnr:5.1f} "
              + " ".join(f"{a}:{v['bits_correct']}" for a, v in attacks.items()), flush=True)
    return {"method": "invisible-watermark dwtDct, 32-bit message", "rows": rows}


# -- report ---------------------------------------------------------------------------------------
def fmt_p(p):
    if p < 1e-300:
        return "<1e-300"
    text = f"{p:.0e}".replace("e-0", "e-").replace("e+00", "")
    return text if p <= DEFAULT_FPR else f"**{text}**"


COLUMNS = [("none", ["none"]), ("JPEG 50", ["jpeg50"]), ("noise σ5", ["noise5"]),
           ("bright ±20%", ["bright+20%", "bright-20%"]), ("contrast ±20%", ["contrast+20%", "contrast-20%"]),
           ("crop 10%", ["crop10%-centre", "crop10%-corner"]), ("resize 50%", ["resize50%"]),
           ("rot 90°", ["rot90"]), ("flip", ["flip"]), ("JPEG+crop+rot", ["jpeg50+crop+rot90"])]


def markdown(results):
    lines = ["| image | size | PSNR dB | SSIM | " + " | ".join(c for c, _ in COLUMNS) + " | payload read |",
             "|---|---|---|---|" + "---|" * len(COLUMNS) + "---|"]
    for row in results["robustness"]:
        cells = []
        for _, keys in COLUMNS:
            cells.append(fmt_p(max(row["attacks"][k]["p_value"] for k in keys)))  # the worst of the group
        read = sum(a["payload_ok"] for a in row["attacks"].values())
        payload = f"{read}/{len(row['attacks'])}" if row.get("payload", True) else "– (zero-bit)"
        size = "×".join(map(str, row["shape"][:2]))
        lines.append(f"| {row['image']} ({row['dtype']}) | {size} | {row['psnr_db']:.1f} | {row['ssim']:.4f} | "
                     + " | ".join(cells) + f" | {payload} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results-watermark.json"))
    parser.add_argument("--quick", action="store_true", help="fewer patches and timing runs (a smoke test)")
    args = parser.parse_args()
    started = time.time()
    images = {name: getattr(skdata, name)() for name in NAMES}
    ct, ct_reason = load_ct()
    if ct is not None:
        images["CT 693_J2KI (HU+1024)"] = ct
    print("robustness:", flush=True)
    results = {"robustness": robustness_rows(images)}
    print("other data:", flush=True)
    results["random_crops"] = [random_crops(128, 2 if args.quick else 6), random_crops(256, 1 if args.quick else 4)]
    if ct is not None:
        results["ct_jpeg_windows"] = ct_jpeg_windows(ct)
    print("false positives:", flush=True)
    results["false_positives"] = false_positives(args.quick)
    print(json.dumps(results["false_positives"], indent=1), flush=True)
    print("timing:", flush=True)
    results["timing"] = timing(7 if args.quick else 31)
    print(json.dumps(results["timing"], indent=1), flush=True)
    print("baseline:", flush=True)
    results["baseline"] = baseline_invisible_watermark({k: v for k, v in images.items() if k in NAMES})
    results["meta"] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "load_average_at_end": list(os.getloadavg()),
        "fpr_threshold": DEFAULT_FPR, "ct_skipped": ct_reason or None, "seconds": round(time.time() - started, 1),
        "quick": args.quick,
    }
    results["markdown"] = markdown(results)
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=1)
    print(results["markdown"])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
