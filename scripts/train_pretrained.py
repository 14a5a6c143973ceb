"""Train the pretrained generators shipped in ``synthaug.pretrained`` and write their model cards.

Data comes only from pip packages (scikit-learn's digits, scikit-image's ``lfw_subset``,
pydicom's CT test files); nothing is downloaded. Each model is fitted on the training part of
its split (``synthaug.pretrained._heldout``), saved with the estimator's own ``save`` format to
``pretrained/<name>.synthaug`` (written atomically), reloaded from those bytes with
``synthaug.load`` and measured on the held-out part; the card ``pretrained/<name>.json`` (and
``<name>.md``) records the data and its licence, the command, versions, seed, the file's sha256
and the metrics. Same ``--seed``, same models (TensorFlow op determinism is on).

PixelCNN trains last; ``--skip digits-pixelcnn`` leaves it out, and a failure there leaves its
files untouched and is reported.

Usage
-----
python scripts/train_pretrained.py [--seed 0] [--only NAME ...] [--skip NAME ...]
                                   [--epochs-scale 1.0] [--no-evaluate] [--out pretrained] [--overwrite]
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_TOTAL_BYTES = 30 * 1024 * 1024

DIGITS_DATA = {
    "name": "scikit-learn digits (sklearn.datasets.load_digits)",
    "source": "UCI ML hand-written digits (Optical Recognition of Handwritten Digits; Alpaydin & Kaynak, "
              "1998), https://archive.ics.uci.edu/dataset/80, the copy shipped in scikit-learn",
    "license": "CC BY 4.0 (UCI Machine Learning Repository); scikit-learn itself is BSD-3-Clause",
    "content": "1797 greyscale 8×8 images of hand-written digits, 17 grey levels (0–16), labels 0–9",
}
LFW_DATA = {
    "name": "scikit-image lfw_subset (skimage.data.lfw_subset)",
    "source": "Labeled Faces in the Wild (Huang et al.), http://vis-www.cs.umass.edu/lfw/: 100 face crops and "
              "100 background crops resized to 25×25, shipped in scikit-image as skimage/data/lfw_subset.npy",
    "license": "shipped under scikit-image's BSD-3-Clause licence (its LICENSE.txt, 'Files: *'; no separate "
               "entry for lfw_subset.npy, and skimage/data/README.txt says nothing more). The LFW "
               "photographs show real people and LFW publishes no licence of its own: check before "
               "redistributing samples",
    "content": "200 greyscale 25×25 images: 100 faces (label 'face'), 100 non-faces (label 'non-face'), "
               "scaled to uint8 0–255",
}
CT_DATA = {
    "name": "pydicom CT test files (pydicom.data.get_testdata_file)",
    "source": "CT_small.dcm (downsized to 128×128 from NEMA WG04 'CT1_UNC', "
              "ftp://medical.nema.org/MEDICAL/Dicom/DataSets/WG04/), 693_J2KI.dcm and "
              "J2K_pixelrep_mismatch.dcm (512×512 JPEG 2000 regression files of pydicom issues #693 and "
              "#1149), as pydicom/data/test_files/README.txt describes them",
    "license": "shipped in pydicom under its MIT licence (pydicom-3.0.2.dist-info/licenses/LICENSE); "
               "test_files/README.txt names the sources above and gives no other licence for these files",
    "content": "3 CT slices in Hounsfield units (int16), cut into 32×32 patches",
}

SPECS = {
    "digits-vae": {
        "description": "Conditional convolutional VAE on scikit-learn's 8×8 digits (levels 0–16, labels 0–9)",
        "data": DIGITS_DATA,
        "build": lambda seed, scale: _vae(decoder_output="mean", epochs=max(1, int(300 * scale)),
                                          random_state=seed),
        "usage": "X, y = model.generate(100, y=7)  # uint8-like int digits 0–16 of class 7",
        "limits": ["Trained on 1347 8×8 digits: a demonstration and test model, not a general digit model.",
                   "decoder_output='mean': smooth, faithful but less varied digits than the real ones "
                   "(low recall); the likelihood is an IWAE lower bound."],
    },
    "digits-gan": {
        "description": "Conditional WGAN-GP on scikit-learn's 8×8 digits (levels 0–16, labels 0–9)",
        "data": DIGITS_DATA,
        "build": lambda seed, scale: _gan(epochs=max(1, int(200 * scale)), random_state=seed),
        "usage": "X, y = model.generate(100)  # labels in the training class balance",
        "limits": ["Trained on 1347 8×8 digits with fewer epochs than the GAN's default (see training.params).",
                   "No likelihood: a GAN has no score_samples."],
    },
    "digits-flow": {
        "description": "Conditional RealNVP flow on scikit-learn's 8×8 digits (levels 0–16, labels 0–9)",
        "data": DIGITS_DATA,
        # hidden_units (128, 128): the default (256, 256) makes an 8 MB file (weights + optimiser state).
        "build": lambda seed, scale: _flow(hidden_units=(128, 128), epochs=max(1, int(300 * scale)),
                                           batch_size=64, random_state=seed),
        "usage": "X, y = model.generate(100, temperature=0.8)  # exact log-likelihoods: model.score_samples(X, y)",
        "limits": ["Trained on 1347 8×8 digits with smaller coupling networks than the default.",
                   "score_samples is a dequantisation bound on log P(x) (fixed noise, deterministic)."],
    },
    "lfw-faces": {
        "description": "Conditional convolutional VAE on scikit-image's 25×25 LFW crops ('face' / 'non-face')",
        "data": LFW_DATA,
        # hidden_units (64,): (128,) makes a 5.1 MB file (weights + optimiser state)
        "build": lambda seed, scale: _vae(decoder_output="mean", latent_dim=16, hidden_units=(64,),
                                          conv_filters=(16, 32), epochs=max(1, int(400 * scale)), batch_size=32,
                                          patience=20, random_state=seed),
        "usage": "X, y = model.generate(16, y='face')  # uint8 25×25 faces",
        "limits": ["Trained on 75 faces and 75 non-faces: blurry, low-variety samples; a demonstration model.",
                   "The data shows real people: do not use samples to identify, recognise or judge anyone."],
    },
    "ct-patches": {
        "description": "WGAN-GP on 32×32 patches of pydicom's CT test slices, int16 Hounsfield units",
        "data": CT_DATA,
        # hidden_units (64, 64): benchmarks/medical.py's GAN with (128, 128) makes a 7.7 MB file
        "build": lambda seed, scale: _gan(latent_dim=32, hidden_units=(64, 64), conv_filters=(16, 32),
                                          epochs=max(1, int(150 * scale)), batch_size=32, random_state=seed),
        "usage": "hu = model.generate(64)  # int16 HU, watermarked (32×32); see synthaug.integrations.medical",
        "limits": ["NOT FOR CLINICAL USE: trained on 207 patches of three test slices; samples are "
                   "texture patches for testing pipelines, never for diagnosis or clinical decisions.",
                   "Trained directly in HU (globally standardised), not in a CT window.",
                   "Samples are watermarked (32×32, many levels): pass watermark=False where ~17 HU RMS matters."],
    },
    "digits-pixelcnn": {
        "description": "Conditional gated PixelCNN on scikit-learn's 8×8 digits (levels 0–16, labels 0–9)",
        "data": DIGITS_DATA,
        "build": lambda seed, scale: _pixelcnn(epochs=max(1, int(30 * scale)), batch_size=32, learning_rate=1e-3,
                                                random_state=seed),
        "usage": "X, y = model.generate(100)  # exact log-likelihoods: model.score_samples(X, y)",
        "limits": ["Trained on 1347 8×8 digits for few epochs (CPU budget); sampling is autoregressive "
                   "(one pass per pixel)."],
    },
}
ORDER = ["digits-vae", "digits-gan", "digits-flow", "lfw-faces", "ct-patches", "digits-pixelcnn"]  # PixelCNN last


def _vae(**kw):
    from synthaug import VAE

    return VAE(**kw)


def _gan(**kw):
    from synthaug import GAN

    return GAN(**kw)


def _flow(**kw):
    from synthaug import Flow

    return Flow(**kw)


def _pixelcnn(**kw):
    from synthaug import PixelCNN

    return PixelCNN(**kw)


def _heldout():
    sys.path.insert(0, str(ROOT))
    from synthaug.pretrained import _heldout

    return _heldout


def _versions() -> dict:
    import keras
    import sklearn
    import tensorflow as tf

    import synthaug

    return {"synthaug": synthaug.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "scikit-learn": sklearn.__version__, "numpy": np.__version__, "python": platform.python_version()}


def _evaluation(model, split) -> dict:
    from synthaug import evaluate

    report = evaluate(model, split.X_train, split.y_train, X_test=split.X_test, y_test=split.y_test, random_state=0)
    return report.to_dict()


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _markdown(card: dict) -> str:
    d, t, m = card["data"], card["training"], card["metrics"]
    lines = [f"# {card['name']}", "", card["description"] + ".", "",
             f"- model: `synthaug.{card['model_type']}`, file `{card['file']}` ({card['size_bytes']:,} bytes), "
             f"sha256 `{card['sha256']}`",
             f"- load: `synthaug.pretrained.load({card['name']!r})`; command line: "
             f"`synthaug generate --pretrained {card['name']} -n 100 -o out/`",
             f"- output: {card['output']}",
             "", "## Data", "",
             f"- {d['name']}: {d['content']}", f"- source: {d['source']}", f"- licence: {d['license']}",
             f"- split: {d['split']} ({d['n_train']} train, {d['n_test']} held out)",
             "", "## Training", "",
             f"- command: `{t['command']}`", f"- seed: {t['seed']}; epochs run: {t['epochs_run']}; "
             f"fit: {t['fit_seconds']} s on {t['machine']}",
             f"- parameters: `{json.dumps(t['params'])}`",
             f"- versions: {', '.join(f'{k} {v}' for k, v in t['versions'].items())}",
             "", "## Metrics on the held-out split", "",
             "| metric | value |", "| --- | ---: |"]
    lines += [f"| {k} | {v} |" for k, v in m["heldout"].items()]
    lines += ["", m["heldout_definition"], ""]
    if m.get("evaluate"):
        lines += ["`synthaug.evaluate` (features fitted on the real training split; TSTR tested on the held-out "
                  "split; `reference` = real held-out data):", "", "| metric | synthetic | reference |",
                  "| --- | ---: | ---: |"]
        ev = m["evaluate"]
        for k, v in ev.get("metrics", {}).items():
            lines.append(f"| {k} | {_fmt(v)} | {_fmt(ev.get('reference', {}).get(k, ''))} |")
        lines.append("")
    elif m.get("evaluate_error"):
        lines += [f"`synthaug.evaluate` was not run: {m['evaluate_error']}", ""]
    lines += ["## Intended use", "", card["intended_use"], "", "## Limits", ""]
    lines += [f"- {x}" for x in card["limits"]]
    lines += ["", "## Example", "", "```python", "import synthaug.pretrained",
              f"model = synthaug.pretrained.load({card['name']!r})", card["usage"], "```", ""]
    return "\n".join(lines)


def _definition(heldout) -> str:
    """How the held-out metrics are computed: the Returns section of ``heldout_metrics``, as plain text."""
    import re

    text = heldout.heldout_metrics.__doc__.split("metrics : dict", 1)[1].strip()
    text = re.sub(r"\s*\n\s*", " ", text).replace("``", "`")
    return re.sub(r":(?:func|mod|meth):`([^`]+)`", r"`\1`", text)


def render_cards(out: Path) -> list:
    """Rewrite every card's metric definition and ``<name>.md`` from its ``<name>.json`` (no training)."""
    from synthaug.io import atomic_write_bytes

    heldout = _heldout()
    written = []
    for json_path in sorted(out.glob("*.json")):
        card = json.loads(json_path.read_text(encoding="utf-8"))
        card["metrics"]["heldout_definition"] = _definition(heldout)
        atomic_write_bytes(json_path, (json.dumps(card, indent=1, ensure_ascii=False) + "\n").encode())
        written += [json_path, atomic_write_bytes(json_path.with_suffix(".md"), _markdown(card).encode())]
    return written


def train_one(name: str, args, heldout) -> dict:
    import keras
    import tensorflow as tf

    import synthaug
    from synthaug.evaluation import _jsonable
    from synthaug.io import atomic_write_bytes

    spec = SPECS[name]
    out = Path(args.out)
    model_path, json_path, md_path = (out / f"{name}{ext}" for ext in (".synthaug", ".json", ".md"))
    if not args.overwrite:
        for p in (model_path, json_path, md_path):
            if p.exists():
                raise FileExistsError(f"{p} exists; pass --overwrite to replace it")
    split = heldout.load_split(name)
    keras.utils.set_random_seed(args.seed)
    model = spec["build"](args.seed, args.epochs_scale)
    start = time.perf_counter()
    if split.y_train is None:
        model.fit(split.X_train)
    else:
        model.fit(split.X_train, split.y_train)
    fit_s = time.perf_counter() - start
    data = model.to_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{name}: {len(data):,} bytes, over the {MAX_FILE_BYTES:,}-byte limit: use a smaller network")
    shipped = synthaug.load(data)  # measure what ships: the saved file, loaded as users load it
    print(f"[{name}] fitted in {fit_s:.1f} s ({len(data):,} bytes); measuring on the held-out split...", flush=True)
    metrics = {"heldout": heldout.heldout_metrics(shipped, split, seed=0),
               "heldout_definition": _definition(heldout)}
    if not args.no_evaluate:
        try:
            metrics["evaluate"] = _evaluation(shipped, split)  # EvaluationReport.to_dict is plain JSON
        except Exception as exc:  # recorded in the card, not fatal: the held-out metrics stand
            metrics["evaluate_error"] = f"{type(exc).__name__}: {exc}"
    history = getattr(model, "history_", None) or {}
    first = next(iter(history.values()), [])
    sample_shape = list(split.X_train.shape[1:])
    card = {
        "name": name,
        "description": spec["description"],
        "model_type": type(model).__name__,
        "file": model_path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "conditional": split.y_train is not None,
        "classes": None if model.classes_ is None else [_jsonable(c) for c in model.classes_],
        "sample_shape": sample_shape,
        "dtype": np.dtype(model.dtype_).name,
        "value_range": [model.data_min_, model.data_max_],
        "output": (f"{np.dtype(model.dtype_).name} arrays of shape (n, {', '.join(map(str, sample_shape))})"
                   + (", with labels" if split.y_train is not None else "")
                   + f", values {model.data_min_:g}..{model.data_max_:g}"),
        "data": {**spec["data"], "split": split.description, "n_train": int(len(split.X_train)),
                 "n_test": int(len(split.X_test))},
        "training": {
            "command": (f"python scripts/train_pretrained.py --only {name} --seed {args.seed}"
                        + (f" --epochs-scale {args.epochs_scale:g}" if args.epochs_scale != 1 else "")
                        + " --overwrite"),
            "seed": args.seed,
            "params": _jsonable(model.get_params(deep=False)),
            "epochs_run": len(first),
            "fit_seconds": round(fit_s, 1),
            "machine": "shared, loaded 2-core CPU (no GPU)" if not tf.config.list_physical_devices("GPU")
                       else "GPU: " + ", ".join(d.name for d in tf.config.list_physical_devices("GPU")),
            "versions": _versions(),
            "date": datetime.date.today().isoformat(),
            "op_determinism": True,
        },
        "metrics": metrics,
        "intended_use": ("Demonstrations, tutorials, tests and quick experiments with synthaug's API and CLI "
                         "(augmenting small models, checking pipelines end to end). Not a production generator."),
        "limits": spec["limits"],
        "usage": spec["usage"],
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(model_path, data)
    atomic_write_bytes(json_path, (json.dumps(card, indent=1, ensure_ascii=False) + "\n").encode())
    atomic_write_bytes(md_path, _markdown(card).encode())
    print(f"[{name}] wrote {model_path} and its card: {json.dumps(metrics['heldout'])}", flush=True)
    return card


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=ORDER, default=None, help="Train only these models.")
    parser.add_argument("--skip", nargs="+", choices=ORDER, default=[], help="Leave these models out.")
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="Multiply every model's epochs.")
    parser.add_argument("--no-evaluate", action="store_true", help="Skip the full synthaug.evaluate report.")
    parser.add_argument("--out", default=str(ROOT / "pretrained"))
    parser.add_argument("--overwrite", action="store_true", help="Replace existing model files and cards.")
    parser.add_argument("--render-cards", action="store_true",
                        help="Only rewrite the Markdown cards from the JSON cards (no training).")
    args = parser.parse_args(argv)
    if args.render_cards:
        for path in render_cards(Path(args.out)):
            print(f"wrote {path}")
        return 0
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    heldout = _heldout()
    names = [n for n in ORDER if (args.only is None or n in args.only) and n not in args.skip]
    failed, total_start = {}, time.perf_counter()
    for name in names:
        try:
            train_one(name, args, heldout)
        except Exception as exc:
            traceback.print_exc()
            failed[name] = f"{type(exc).__name__}: {exc}"
            print(f"[{name}] FAILED, left out: {failed[name]}", flush=True)
    sizes = {p.name: p.stat().st_size for p in Path(args.out).glob("*.synthaug")}
    total = sum(sizes.values())
    print(f"\ntotal {time.perf_counter() - total_start:.0f} s; files: "
          + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sorted(sizes.items())) + f"; total {total / 1e6:.2f} MB")
    if total > MAX_TOTAL_BYTES:
        print(f"TOTAL SIZE {total:,} bytes is over the {MAX_TOTAL_BYTES:,}-byte limit", flush=True)
        return 1
    if failed:
        print("failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
