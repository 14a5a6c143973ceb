"""The ``synthaug`` command line. TensorFlow is imported inside the commands, never at the top,
so that ``synthaug --help`` answers at once.

Exit codes: 0 ok, 1 failure, 2 usage error; ``verify`` exits 3 when it finds a synthetic file.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import click

from synthaug.config import config_option, config_params


def _fail(message: str):
    raise click.ClickException(message)


class TensorFlowCommand(click.Command):
    """A command that needs TensorFlow: imported once its arguments are parsed (so ``--help`` and
    usage errors stay instant), with TensorFlow's start-up log lines kept off stderr."""

    def invoke(self, ctx):
        from synthaug._tensorflow import import_tensorflow

        import_tensorflow()
        return super().invoke(ctx)


@click.group()
@click.version_option(package_name="synthaug")
def cli():
    """Synthetic-data augmentation: fit a generator on a folder or array, write synthetic data.

    \b
    Example:
      synthaug demo -o synthaug-demo
      synthaug fit images/ -o model.synthaug
      synthaug generate model.synthaug -n 100 -o synthetic/
    """


# -- shared pieces of the commands --------------------------------------------------------------------
MODELS = ("vae", "gan", "flow", "pixelcnn", "pose")
_MODEL_CLASSES = {"vae": ("synthaug.models.vae", "VAE"), "gan": ("synthaug.models.gan", "GAN"),
                  "flow": ("synthaug.models.flow", "Flow"), "pixelcnn": ("synthaug.models.pixelcnn", "PixelCNN"),
                  "pose": ("synthaug.models.pose", "PoseModel")}


SEED = click.IntRange(0, 2**32 - 1)  # what NumPy's and scikit-learn's random_state accept


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange, refusing NaN (which passes every comparison's check) and infinity."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


FINITE_POSITIVE = FiniteFloatRange(min=0, min_open=True)
OPEN_UNIT_INTERVAL = FiniteFloatRange(0, 1, min_open=True, max_open=True)


class ImageSize(click.ParamType):
    """``HxW`` (or ``N`` for a square, or a [H, W] list from a config file) → (H, W)."""

    name = "HxW"
    MAX_SIDE = 8192

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)) and len(value) == 2:
            parts = list(value)
        else:
            parts = str(value).lower().replace("×", "x").split("x")
            parts = parts * 2 if len(parts) == 1 else parts
        try:
            height, width = (int(p) for p in parts)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not an image size such as 64x64", param, ctx)
        if height < 1 or width < 1:
            self.fail(f"{value!r}: height and width must be positive", param, ctx)
        if max(height, width) > self.MAX_SIDE:  # a typo's extra zeros would exhaust memory, not fail
            self.fail(f"{value!r}: at most {self.MAX_SIDE} pixels a side", param, ctx)
        return height, width


def _make_generator(model: str, *, seed: int, quiet: bool, params: dict | None = None, **options):
    """The generator ``model`` with ``options`` (those not None) and the config file's ``params``.

    An option the user set (on the command line, or as an option in the config file) wins over
    the same name in ``[params]``; ``[params]`` wins over the options' defaults.
    """
    import importlib

    from click.core import ParameterSource

    module, name = _MODEL_CLASSES[model]
    cls = getattr(importlib.import_module(module), name)
    ctx = click.get_current_context(silent=True)

    def user_set(option: str) -> bool:
        source = ctx.get_parameter_source(option) if ctx is not None else None
        return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.DEFAULT_MAP)

    given = {k: v for k, v in options.items() if v is not None}
    kwargs = {"random_state": seed, "verbose": 0 if quiet else 1}
    kwargs.update({k: v for k, v in given.items() if not user_set(k)})
    kwargs.update(params or {})
    kwargs.update({k: v for k, v in given.items() if user_set(k)})
    valid = cls._get_param_names()
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise click.BadParameter(f"{name} has no parameter(s) {', '.join(unknown)}; its parameters: "
                                 f"{', '.join(valid)}", param_hint="--config [params] / options")
    return cls(**kwargs)


def _refuse_non_empty(output: Path, overwrite: bool) -> None:
    """A usage error, before any work, for a non-empty output folder without --overwrite."""
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise click.BadParameter(f"{output} is not empty; pass --overwrite", param_hint="--output")


def _remove_previous_outputs(output: Path, previous: set[str], written: set[str], inputs=()) -> None:
    """After an --overwrite run (``previous``: :func:`synthaug.io.listed_outputs` before it): delete
    what the earlier run listed and this one did not write, and the folders that leaves empty, so
    OUTPUT never mixes two runs. Files synthaug did not list stay, and so do this run's ``inputs``
    (e.g. a detector reused from the earlier run)."""
    keep = {Path(p).resolve() for p in inputs if p is not None}
    for name in sorted(previous - written):
        path = output / name
        if path.resolve() in keep:
            continue
        path.unlink(missing_ok=True)
        for parent in path.parents:
            if parent == output or output not in parent.parents:
                break
            try:
                parent.rmdir()  # only if empty
            except OSError:
                break


def _echo_json(payload: dict) -> None:
    click.echo(json.dumps(payload, indent=1, default=str))


def _read_or_fail(path: Path, image_size=None, quiet: bool = False):
    """``synthaug.io.read_data``, skipped files listed on stderr, errors as clean CLI failures."""
    from synthaug.io import read_data

    try:
        ds = read_data(path, image_size=image_size)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    for bad, reason in ds.skipped:
        click.echo(f"skipped {bad}: {reason}", err=True)
    return ds


@cli.command(cls=TensorFlowCommand)
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Model file to write (.synthaug).")
@click.option("--model", type=click.Choice(MODELS), default="vae", show_default=True, help="Generator to train.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Maximum training epochs [default: the model's].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="[default: the model's]")
@click.option("--learning-rate", type=FINITE_POSITIVE, default=None,
              help="[default: the model's]")
@click.option("--latent-dim", type=click.IntRange(min=1), default=None, help="VAE and GAN [default: the model's].")
@click.option("--resize", type=ImageSize(), default=None,
              help="Resize images of other sizes to HxW (mixed sizes are refused without it).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed.")
@click.option("--overwrite", is_flag=True, help="Replace an existing model file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout (for scripts).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or messages (errors still go to stderr).")
@config_option
def fit(data, output, model, epochs, batch_size, learning_rate, latent_dim, resize, seed, overwrite, as_json, quiet):
    """Fit a generator on DATA: a folder of images (class sub-folders = labels), .npy or .npz (X, y).

    Images may be PNG, JPEG, TIFF (8 or 16 bit) or BMP. Parameters not offered as options go in
    a --config file's [params] table (see the README).

    \b
    Example:
      synthaug fit images/ -o model.synthaug --epochs 100
      synthaug fit images/ -o gan.synthaug --model gan --resize 32x32 --config gan.toml
    """
    if output.is_dir():
        raise click.BadParameter(f"{output} is a folder; give the path of the model file to write",
                                 param_hint="--output")
    if _overlaps(data, output):
        raise click.BadParameter(f"{output} is inside {data}; write the model outside the data",
                                 param_hint="--output")
    if output.exists() and not overwrite:
        raise click.BadParameter(f"{output} exists; pass --overwrite to replace it", param_hint="--output")
    if latent_dim is not None and model in ("flow", "pixelcnn", "pose"):
        raise click.BadParameter(f"--model {model} has no latent dimension", param_hint="--latent-dim")
    ds = _read_or_fail(data, resize)  # before the generator, whose import loads TensorFlow
    generator = _make_generator(model, seed=seed, quiet=quiet or as_json, params=config_params(), epochs=epochs,
                                batch_size=batch_size, learning_rate=learning_rate, latent_dim=latent_dim)
    try:
        generator.fit(ds.X, ds.y)
    except (ValueError, TypeError) as exc:
        _fail(str(exc))
    generator.save(output, overwrite=overwrite)
    # PoseModel's history has one entry per registration round, each of `epochs` steps.
    epochs_run = generator.epochs if model == "pose" else len(next(iter(generator.history_.values()), []))
    if as_json:
        _echo_json({"model_file": str(output), "model": type(generator).__name__, "n_samples": int(len(ds.X)),
                    "sample_shape": list(ds.X.shape[1:]), "epochs_run": epochs_run,
                    "classes": None if generator.classes_ is None else generator.classes_.tolist(),
                    "skipped": [{"path": p, "reason": r} for p, r in ds.skipped]})
    elif not quiet:
        click.echo(f"wrote {output} ({len(ds.X)} samples, {epochs_run} epoch{'' if epochs_run == 1 else 's'})")
    if ds.skipped:
        raise SystemExit(1)


def c2pa_options(command):
    """--c2pa-cert, --c2pa-key and --c2pa-alg: sign a C2PA manifest into every PNG written."""
    from synthaug.provenance.content_credentials import ALGORITHMS  # standard library only: --help stays instant

    command = click.option("--c2pa-alg", default="es256", show_default=True, type=click.Choice(ALGORITHMS),
                           help="Signature algorithm of the C2PA key.")(command)
    command = click.option("--c2pa-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                           help="PEM private key of --c2pa-cert.")(command)
    return click.option("--c2pa-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                        help="PEM certificate chain to sign a C2PA manifest into every synthetic PNG "
                             "(needs synthaug[c2pa]).")(command)


def ed25519_option(command):
    """--ed25519-key: also sign every provenance record with an Ed25519 key."""
    return click.option("--ed25519-key", "ed25519_key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        default=None, help="Also sign every provenance record with this Ed25519 private key (PEM, "
                                           "unencrypted, or its 32 raw bytes); verifiers pin it with `verify "
                                           "--ed25519-public-key`. Needs synthaug[signing].")(command)


def _ed25519_private_key(path: Path | None):
    """The Ed25519 private key of --ed25519-key, checked before any work; None without one."""
    if path is None:
        return None
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        _fail("Ed25519 signatures need the cryptography package: pip install 'synthaug[signing]'")
    data = path.read_bytes()
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        elif len(data) == 32:
            key = ed25519.Ed25519PrivateKey.from_private_bytes(data)
        else:
            raise ValueError("neither a PEM private key nor 32 raw bytes")
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(f"{path} is not an Ed25519 private key ({exc})", param_hint="--ed25519-key")
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise click.BadParameter(f"{path} holds a {type(key).__name__}, not an Ed25519 key",
                                 param_hint="--ed25519-key")
    return key


def _c2pa_signer(cert: Path | None, key: Path | None, alg: str):
    """The C2PA signer of --c2pa-cert/--c2pa-key (both or neither), checked before any work."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise click.UsageError("--c2pa-cert and --c2pa-key go together")
    from synthaug.provenance import content_credentials

    if not content_credentials.available():
        _fail('C2PA manifests need the c2pa-python package: pip install "synthaug[c2pa]"')
    try:
        return content_credentials.C2paSigner.from_files(cert, key, alg).check()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--c2pa-cert/--c2pa-key") from None


def _generator_source(model: Path | None, pretrained: str | None):
    """The generator ``generate`` draws from (a model file, or a pretrained one by name) and what
    the provenance record names as its source."""
    if (model is None) == (pretrained is None):
        raise click.UsageError("give a MODEL file or --pretrained NAME (one of them)")
    if pretrained is not None:
        import synthaug.pretrained as registry

        if pretrained not in registry.names():
            raise click.BadParameter(f"no pretrained generator named {pretrained!r}; available: "
                                     f"{', '.join(registry.names())} (see `synthaug models`)", param_hint="--pretrained")
        try:
            return registry.load(pretrained), {"pretrained": pretrained, "model_file": registry.card(pretrained)["file"]}
        except ValueError as exc:
            _fail(str(exc))
    import synthaug

    try:
        return synthaug.load(model), {"model_file": model.name}
    except ValueError as exc:
        _fail(str(exc))


@cli.command(cls=TensorFlowCommand)
@click.argument("model", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pretrained", metavar="NAME", default=None,
              help="Draw from a pretrained generator shipped with synthaug instead of MODEL (see `synthaug models`).")
@click.option("-n", "--n-samples", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Write into a non-empty output folder (an earlier run's "
              "files, as its manifest.json lists them, are replaced; other files are kept).")
@click.option("--label", "labels", multiple=True,
              help="Generate only this class (repeat for several; drawn evenly); default: classes drawn "
                   "at random in the training balance.")
@click.option("--no-watermark", is_flag=True,
              help="Leave the pixels unmarked (the signed provenance record is still written).")
@c2pa_options
@ed25519_option
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON on stdout (for scripts).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or messages (errors still go to stderr).")
def generate(model, pretrained, n_samples, output, seed, overwrite, labels, no_watermark, c2pa_cert, c2pa_key,
             c2pa_alg, ed25519_key_file, as_json, quiet):
    """Generate N samples from a fitted MODEL (or --pretrained NAME) into the folder OUTPUT (PNGs per class, or samples.npz).

    Images of 32×32 pixels or more (with more than 32 grey levels) carry synthaug's invisible
    watermark; every PNG carries a signed provenance record, and OUTPUT/provenance.json lists all
    outputs (see `synthaug verify`); OUTPUT/manifest.json lists every file written. With
    --c2pa-cert and --c2pa-key every PNG also carries a signed C2PA manifest (Content Credentials).

    \b
    Example:
      synthaug generate model.synthaug -n 100 -o synthetic/
      synthaug generate --pretrained digits-vae -n 100 -o out/ --label 3 --label 8
      synthaug generate model.synthaug -n 10 -o out/ --c2pa-cert chain.pem --c2pa-key key.pem
    """
    _refuse_non_empty(output, overwrite)
    from synthaug.io import listed_outputs

    previous = listed_outputs(output) if overwrite else set()
    c2pa_signer = _c2pa_signer(c2pa_cert, c2pa_key, c2pa_alg)
    ed25519_key = _ed25519_private_key(ed25519_key_file)
    est, source = _generator_source(model, pretrained)
    import numpy as np

    import synthaug
    from synthaug.io import atomic_write_bytes, sample_grid, write_samples
    from synthaug.provenance import build_record
    from synthaug.provenance.generated import carries_payload, is_markable

    y_request = None
    if labels:
        if getattr(est, "classes_", None) is None:
            raise click.BadParameter(f"the {type(est).__name__} was fitted without labels", param_hint="--label")
        known = {str(c): c for c in est.classes_}
        unknown = [label for label in labels if label not in known]
        if unknown:
            raise click.BadParameter(f"unknown class(es) {', '.join(unknown)}; the model knows "
                                     f"{', '.join(known)}", param_hint="--label")
        y_request = np.resize(np.asarray([known[label] for label in labels]), n_samples)
    out = est.generate(n_samples, y=y_request, random_state=seed, watermark=not no_watermark)
    X, y = out if isinstance(out, tuple) else (out, None)
    # Signed provenance record in every PNG's text chunks and in provenance.json (the key:
    # $SYNTHAUG_WATERMARK_KEY, else the public default key; only its id is written).
    record = build_record(est, seed=seed, watermarked=is_markable(X) and not no_watermark,
                          zero_bit=not carries_payload(X), extra=source)
    try:
        written = write_samples(X, output, y=y, overwrite=overwrite, progress=not (quiet or as_json), record=record,
                                c2pa_signer=c2pa_signer, ed25519_private_key=ed25519_key)
    except FileExistsError as exc:
        raise click.BadParameter(str(exc), param_hint="--output")
    except ValueError as exc:  # C2PA options for samples that are not images
        _fail(str(exc))
    files = [{"path": p.relative_to(output).as_posix(), "kind": "synthetic"} for p in written]
    if (output / "provenance.json").is_file():
        files.append({"path": "provenance.json", "kind": "provenance"})
    try:
        sample_grid(X[:100], output / "grid.png", overwrite=overwrite, record=record, ed25519_private_key=ed25519_key)
        files.append({"path": "grid.png", "kind": "grid"})
    except ValueError:
        pass  # tabular samples that are not square images get no grid
    manifest = {"command": "synthaug generate", "synthaug_version": synthaug.__version__, **source,
                "model": type(est).__name__, "n_samples": int(n_samples), "seed": seed,
                "sample_shape": list(np.shape(X)[1:]), "files": files}
    _remove_previous_outputs(output, previous, {f["path"] for f in files})
    atomic_write_bytes(output / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    if as_json:
        _echo_json(manifest)
    elif not quiet:
        others = [f["path"] for f in files if f["kind"] != "synthetic"] + ["manifest.json"]
        click.echo(f"wrote {len(X)} samples ({len(written)} file(s)) and {', '.join(others)} to {output}")


@cli.command(cls=TensorFlowCommand)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("synthaug-demo"),
              show_default=True)
@click.option("--epochs", default=300, show_default=True, type=click.IntRange(min=1), help="Maximum training epochs.")
@click.option("--n-importance", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Importance samples for the test-set likelihood bound (fewer: faster, looser).")
@click.option("--overwrite", is_flag=True)
def demo(output, epochs, n_importance, overwrite):
    """Fit a conditional VAE on scikit-learn's digits; write the model, samples, a grid and a report.

    The report (report.png, report.json) compares the synthetic digits with real ones: fidelity,
    diversity, train-on-synthetic-test-on-real accuracy and memorisation.

    \b
    Example:
      synthaug demo -o synthaug-demo
    """
    _refuse_non_empty(output, overwrite)
    import time

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from synthaug.evaluation import evaluate
    from synthaug.io import atomic_write_bytes, sample_grid, write_samples
    from synthaug.models.vae import VAE

    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.images, digits.target, test_size=0.25, random_state=0, stratify=digits.target)
    start = time.perf_counter()
    # decoder_output="mean": smooth digits for augmentation (see the VAE's docstring)
    model = VAE(decoder_output="mean", epochs=epochs, n_importance=n_importance, random_state=0,
                verbose=1).fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    click.echo("scoring the test split and evaluating the samples...")
    bpd = float(-model.score_samples(X_test, y_test).mean() / (64 * np.log(2)))
    X, y = model.generate(1000, y=np.repeat(np.arange(10), 100), random_state=0)
    evaluation = evaluate((X, y), X_train, y_train, X_test=X_test, y_test=y_test, random_state=0)
    output.mkdir(parents=True, exist_ok=True)
    model.save(output / "digits-vae.synthaug", overwrite=overwrite)
    from synthaug.provenance import build_record

    write_samples(X, output / "samples", y=y, overwrite=overwrite,
                  record=build_record(model, seed=0, watermarked=False))  # 8×8 digits: the record only
    sample_grid(X[::10][np.argsort(np.tile(np.arange(10), 10), kind="stable")], output / "grid.png",
                overwrite=overwrite)
    evaluation.plot(output / "report.png", overwrite=overwrite)
    summary = {"data": "sklearn digits, digits protocol split (1347 train, 450 test)",
               "model": "VAE (conditional, convolutional)",
               "test_bits_per_dim_bound": round(bpd, 4), "fit_seconds": round(fit_s, 1),
               "epochs": len(model.history_["loss"]), "n_generated": len(X),
               "evaluation": evaluation.to_dict()}
    atomic_write_bytes(output / "report.json", json.dumps(summary, indent=2).encode())
    click.echo(evaluation.table())
    click.echo(f"\ntest bound: {bpd:.3f} bits/dim; fit {fit_s:.1f} s, {summary['epochs']} epochs")
    click.echo(f"wrote {output}/: digits-vae.synthaug, samples/samples.npz, grid.png, report.png, report.json")


def _read_for_evaluate(path: Path, what: str, image_size=None, synthetic: bool = False, quiet: bool = False):
    """read_data for evaluate; for the synthetic side, an ``augment`` folder's real copies (listed
    in its manifest) are left out: counted as synthetic, they would read as memorised data."""
    from synthaug.io import read_data

    try:
        ds = read_data(path, image_size=image_size, leave_out=("grid", "real") if synthetic else ("grid",))
    except (ValueError, OSError) as exc:
        _fail(f"{what}: {exc}")
    for bad, reason in ds.skipped:
        click.echo(f"skipped {bad}: {reason}", err=True)
    if ds.left_out and not quiet:
        click.echo(f"{what}: left out {ds.left_out} real image(s) that {path}/manifest.json lists as real copies",
                   err=True)
    return ds


def _match_labels(y, like):
    """``y`` in the type of the labels ``like``: folder names are strings, .npz labels numbers."""
    import numpy as np

    if y is None or like is None:
        return y
    y, like = np.asarray(y), np.asarray(like)
    if (y.dtype.kind in "US") == (like.dtype.kind in "US"):
        return y
    try:
        return y.astype(str) if like.dtype.kind in "US" else y.astype(like.dtype)
    except ValueError:
        return y  # evaluate names the mismatch


@cli.command(cls=TensorFlowCommand)
@click.argument("real", type=click.Path(exists=True, path_type=Path))
@click.argument("synthetic", metavar="SYNTHETIC_OR_MODEL", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Report PNG to write.")
@click.option("-n", "--n-samples", type=click.IntRange(min=6), default=None,
              help="Samples to draw from a model [default: as many as the real training set], "
                   "or to pick at random from synthetic samples [default: all].")
@click.option("--test", "test_data", type=click.Path(exists=True, path_type=Path), default=None,
              help="Real data the generator never saw (folder, .npy, .npz). Without it, 25% of REAL "
                   "is held out (stratified by label, seeded by --seed).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed: split, samples, feature network.")
@click.option("--resize", type=ImageSize(), default=None,
              help="Resize the images of every folder read to HxW (mixed sizes are refused without it).")
@click.option("--log-likelihood", is_flag=True,
              help="Also report a model's bits per dimension on the holdout (slow for a VAE).")
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the metrics as JSON to this file.")
@click.option("--overwrite", is_flag=True, help="Replace existing report files.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the metrics as JSON on stdout instead of the table (for scripts).")
@click.option("-q", "--quiet", is_flag=True, help="No table or messages (errors still go to stderr).")
def evaluate(real, synthetic, output, n_samples, test_data, seed, resize, log_likelihood, metrics_path, overwrite,
             as_json, quiet):
    """Compare synthetic data with REAL data: fidelity, diversity, usefulness and privacy.

    REAL is a folder of images (class sub-folders = labels), a .npy or a .npz (X, y).
    SYNTHETIC_OR_MODEL is a .synthaug model to draw samples from, or synthetic samples in one
    of the forms of REAL. Prints the metric table and writes a PNG report.

    \b
    Example:
      synthaug evaluate digits.npz model.synthaug -o report.png --metrics metrics.json
      synthaug evaluate images/ synthetic/ -o report.png --json
    """
    if output.suffix.lower() != ".png":
        raise click.BadParameter(f"the report is a PNG image; name it *.png, not {output.name}", param_hint="--output")
    for path, hint in ((output, "--output"), (metrics_path, "--metrics")):
        if path is not None and path.exists() and not overwrite:
            raise click.BadParameter(f"{path} exists; pass --overwrite to replace it", param_hint=hint)
    if metrics_path is not None and metrics_path.resolve() == output.resolve():
        raise click.BadParameter(f"{metrics_path} is also the report (-o); give the metrics their own file",
                                 param_hint="--metrics")
    for path, what in ((real, "REAL"), (synthetic, "SYNTHETIC_OR_MODEL"), (test_data, "--test")):
        for out_path, hint in ((output, "--output"), (metrics_path, "--metrics")):
            if path is None or out_path is None or not _overlaps(path, out_path):
                continue
            if path.resolve() == out_path.resolve():
                raise click.BadParameter(f"{path} is the input {what}; an output may not replace it", param_hint=hint)
            # a report inside an input folder would be read as data by the next run
            raise click.BadParameter(f"{out_path} is inside the input folder {what} ({path}); write it elsewhere",
                                     param_hint=hint)
    from synthaug.evaluation import evaluate as run_evaluation
    from synthaug.io import atomic_write_bytes

    real_ds = _read_for_evaluate(real, "REAL", resize)
    test_ds = None if test_data is None else _read_for_evaluate(test_data, "--test", resize)
    skipped = bool(real_ds.skipped) or (test_ds is not None and bool(test_ds.skipped))
    if test_ds is not None and (real_ds.y is None) != (test_ds.y is None):
        has, lacks = (real.name, test_data.name) if test_ds.y is None else (test_data.name, real.name)
        _fail(f"{has} has labels but {lacks} has none; give both labels (class sub-folders, or y in a .npz) "
              "or neither")
    real_shape = tuple(real_ds.X.shape[1:])
    if synthetic.suffix == ".synthaug":
        import synthaug

        try:
            source = synthaug.load(synthetic)
        except ValueError as exc:
            _fail(str(exc))
        shape, like = tuple(source.input_shape_), source.classes_
        what = f"the model {synthetic.name} generates"
    else:
        syn_ds = _read_for_evaluate(synthetic, "SYNTHETIC_OR_MODEL", resize, synthetic=True, quiet=quiet or as_json)
        skipped = skipped or bool(syn_ds.skipped)
        shape, like = tuple(syn_ds.X.shape[1:]), syn_ds.y
        source = (syn_ds.X, syn_ds.y)
        what = f"{synthetic.name} holds"
    if shape != real_shape:
        _fail(f"{what} samples of shape {shape}, but {real.name} holds samples of shape {real_shape}; "
              "real and synthetic samples must have the same shape")
    import warnings

    try:
        with warnings.catch_warnings(record=True) as caught:  # the filters in force still apply
            report = run_evaluation(
                source, real_ds.X, _match_labels(real_ds.y, like),
                X_test=None if test_ds is None else test_ds.X,
                y_test=None if test_ds is None else _match_labels(test_ds.y, like),
                n_samples=n_samples, log_likelihood=log_likelihood, random_state=seed,
            )
    except ValueError as exc:
        _fail(str(exc))
    if not quiet:  # each once, as a message rather than Python's warning with its source line
        for message in dict.fromkeys(str(w.message) for w in caught):
            click.echo(f"warning: {message}", err=True)
    report.plot(output, overwrite=overwrite)
    written = [str(output)]
    if metrics_path is not None:
        atomic_write_bytes(metrics_path, (report.to_json() + "\n").encode())
        written.append(str(metrics_path))
    if as_json:
        click.echo(report.to_json())
    elif not quiet:
        click.echo(report.table())
        click.echo(f"wrote {', '.join(written)}")
    if skipped:
        raise SystemExit(1)  # as fit does: unreadable files were skipped


def _verify_table(results) -> str:
    with_c2pa = any(r.content_credentials is not None for r in results)
    rows = [("file", "synthetic", "p-value", "payload", "record") + (("c2pa",) if with_c2pa else ())]
    for r in results:
        wm = r.watermark
        if wm is None:
            p_value = "error" if r.error else "n/a"
        elif wm.message and wm.p_value == 1.0:
            p_value = "too small" if "smaller than" in wm.message else "n/a"
        else:
            p_value = "<1e-300" if wm.p_value < 1e-300 else f"{wm.p_value:.1e}"
        payload = "-" if wm is None or wm.payload is None else f"{wm.payload:08x}"
        c2pa = () if not with_c2pa else ("-" if r.content_credentials is None else r.content_credentials.state.lower(),)
        rows.append((r.path, "yes" if r.synthetic else "no", p_value, payload, r.record_status) + c2pa)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _ed25519_public_key(path: Path) -> bytes:
    """32 raw bytes from a PEM public key file, a file of the raw bytes, or their base64."""
    import base64
    import binascii

    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ed25519
        except ImportError:
            raise click.BadParameter("reading a PEM key needs cryptography (pip install 'synthaug[signing]')",
                                     param_hint="--ed25519-public-key") from None
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise click.BadParameter(f"{path} is not a PEM public key ({exc})", param_hint="--ed25519-public-key")
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise click.BadParameter(f"{path} holds a {type(key).__name__}, not an Ed25519 public key",
                                     param_hint="--ed25519-public-key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if len(data) == 32:
        return data
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise click.BadParameter(f"{path} is not an Ed25519 public key (PEM, 32 raw bytes or their base64)",
                                 param_hint="--ed25519-public-key")
    return raw


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per file, instead of a table.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File holding the watermark/HMAC key (surrounding whitespace ignored) "
                   "[default: $SYNTHAUG_WATERMARK_KEY, else synthaug's public key].")
@click.option("--fpr", default=1e-6, show_default=True, type=OPEN_UNIT_INTERVAL,
              help="False-positive rate of the watermark test.")
@click.option("--ed25519-public-key", "public_key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Require records signed by this Ed25519 key: a PEM public key file, or its 32 "
                                 "bytes raw or in base64 (needs the signing extra).")
def verify(paths, as_json, key_file, fpr, public_key_file):
    """Check files or folders for synthaug's invisible watermark and signed provenance record.

    PATHS are images (PNG, JPEG, TIFF, BMP, WebP), DICOM, .npy/.npz files, or folders searched
    recursively. One row per file: synthetic or not (watermark detected, or a synthaug record
    present), the watermark's p-value (chance that an unmarked image scores as high), its
    payload (the generating model's id) and the record's status: valid, image-modified,
    invalid-signature, unknown-key, unsigned, unreadable or none. With c2pa-python installed and
    a C2PA manifest in any file, a c2pa column gives its state (valid, trusted, invalid or -).

    \b
    Exit status: 0 no synthetic file found; 3 at least one synthetic file found;
    1 no synthetic file found but a file could not be read; 2 usage error.

    \b
    Example:
      synthaug verify synthetic/
      synthaug verify photo.jpg --json
    """
    from synthaug.provenance.verify import verify as run_verify

    key = None if key_file is None else key_file.read_bytes().strip()
    if key is not None and not key:
        raise click.BadParameter(f"{key_file} is empty", param_hint="--key-file")
    public_key = None if public_key_file is None else _ed25519_public_key(public_key_file)
    results = run_verify(list(paths), key, fpr=fpr, ed25519_public_key=public_key)
    if not results:
        _fail("found no image, DICOM, .npy or .npz file in " + ", ".join(map(str, paths)))
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        click.echo(_verify_table(results))
        n_synthetic = sum(r.synthetic for r in results)
        click.echo(f"\n{n_synthetic} of {len(results)} files synthetic "
                   f"(watermark p-value <= {fpr:g} or a synthaug record)")
    for r in results:
        if r.error:
            click.echo(f"could not read {r.path}: {r.error}", err=True)
    if any(r.synthetic for r in results):
        raise SystemExit(3)
    if any(r.error for r in results):
        raise SystemExit(1)


# -- detect: anomaly detection from reconstruction error ----------------------------------------------
_DETECT_SCORES = ["auto", "reconstruction", "normalized", "topk", "ssim", "likelihood"]  # as in integrations/anomaly.py
_DETECTOR_FILE = "detector.synthaug-detector"


def _sample_names(path: Path, ds) -> list[str]:
    """Names of the samples ``read_data(path)`` returned, in its order: image paths relative to the
    folder, or ``FILE[i]`` for the rows of an array file."""
    if ds.files is None:
        return [f"{path.name}[{i}]" for i in range(len(ds.X))]
    return [f.relative_to(path).as_posix() for f in ds.files]


def _heatmap_name(name: str, index: int, used: set) -> str:
    """maps/<image path with / as __, without its suffix>.png, or maps/row_<index>.png for arrays;
    the index is appended where two images would share a name (a.png and a.jpg)."""
    stem = name.replace("/", "__").rsplit(".", 1)[0] if not name.endswith("]") else f"row_{index:06d}"
    candidate = f"maps/{stem}.png"
    return candidate if candidate not in used else f"maps/{stem}_{index}.png"


def _contamination(value):
    if value is None or value == "auto":
        return value
    try:
        share = float(value)
    except ValueError:
        share = None
    if share is None or not 0.0 < share <= 0.5:
        raise click.BadParameter(f"expected 'auto' or a share in (0, 0.5]; got {value!r}",
                                 param_hint="--contamination")
    return share


def _overlaps(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


@cli.command(cls=TensorFlowCommand)
@click.argument("data", metavar="DIR", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: scores.csv, maps/ (heat maps of flagged images), the fitted detector.")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help=f"A fitted detector ({_DETECTOR_FILE} of an earlier run) instead of fitting one.")
@click.option("--train", "train_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="Fit on these normal images (folder, .npy, .npz) instead of on DIR.")
@click.option("--score", type=click.Choice(_DETECT_SCORES), default=None,
              help="How to score a sample; auto: ssim for images of 16×16 pixels or more, else reconstruction [default: auto].")
@click.option("--contamination", default=None,
              help="Expected share of outliers in the training data, or 'auto' [default: auto].")
@click.option("--top-k", type=FiniteFloatRange(0.0, 1.0, min_open=True), default=None,
              help="Share of pixels averaged by --score topk [default: 0.01].")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Maximum training epochs [default: 300].")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed.")
@click.option("--resize", type=ImageSize(), default=None,
              help="Resize the images of DIR and --train to HxW (mixed sizes are refused without it).")
@click.option("--max-maps", default=100, show_default=True, type=click.IntRange(min=0),
              help="Heat-map PNGs for at most this many flagged images, the most abnormal first.")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty output folder (an earlier run's "
              "files, as its manifest.json lists them, are replaced; other files are kept).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON on stdout (for scripts).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or messages (errors still go to stderr).")
def detect(data, output, model_path, train_path, score, contamination, top_k, epochs, seed, resize, max_maps,
           overwrite, as_json, quiet):
    """Flag unusual images in DIR by how badly a generator fitted on normal data reconstructs them.

    DIR is a folder of images (class sub-folders are read as labels and listed, not used), a .npy
    or a .npz (X). By default a VAE is fitted on DIR itself (mostly normal images) or on --train,
    and the fitted detector is saved in OUTPUT for later runs with --model. Writes OUTPUT/scores.csv
    (file, label, score, decision, outlier, heatmap; lower score = more abnormal, outlier = 1 when
    decision < 0), a heat-map PNG per flagged image in OUTPUT/maps/ and OUTPUT/manifest.json. Nothing
    is written into DIR.

    \b
    Example:
      synthaug detect scans/ -o findings/ --train normal-scans/ --score topk
      synthaug detect new-scans/ -o findings-2/ --model findings/detector.synthaug-detector
    """
    fit_options = {"--train": train_path, "--score": score, "--contamination": contamination,
                   "--top-k": top_k, "--epochs": epochs}
    if model_path is not None:
        given = [name for name, value in fit_options.items() if value is not None]
        if given:
            raise click.UsageError(
                f"--model uses a fitted detector; {', '.join(given)} only apply when fitting one")
    contamination = _contamination(contamination)
    for source in (data, train_path):
        if source is not None and _overlaps(source, output):
            raise click.BadParameter(f"{output} overlaps {source}; write the results to a separate folder",
                                     param_hint="--output")
    _refuse_non_empty(output, overwrite)
    import csv
    import io

    import numpy as np

    from synthaug.integrations.anomaly import ReconstructionAnomalyDetector, default_generator
    from synthaug.io import atomic_write_bytes, read_data

    datasets = {}
    for source, what in ((data, "DIR"), (train_path, "--train")):
        if source is None:
            continue
        try:
            datasets[what] = read_data(source, image_size=resize)
        except (ValueError, OSError) as exc:
            _fail(f"{what}: {exc}")
        for bad, reason in datasets[what].skipped:
            click.echo(f"skipped {bad}: {reason}", err=True)
    ds = datasets["DIR"]
    train_ds = datasets.get("--train")
    if train_ds is not None and train_ds.X.shape[1:] != ds.X.shape[1:]:  # before a fit that could not score DIR
        _fail(f"--train holds samples of shape {train_ds.X.shape[1:]} and DIR of shape {ds.X.shape[1:]}; "
              "a detector scores data shaped like its training data")
    names = _sample_names(data, ds)
    if model_path is not None:
        try:
            detector = ReconstructionAnomalyDetector.load(model_path)
        except ValueError as exc:
            _fail(str(exc))
    else:
        params = {"anomaly_score": score or "auto", "contamination": contamination or "auto",
                  "top_k": 0.01 if top_k is None else top_k, "random_state": seed}
        generator = default_generator(random_state=seed, verbose=0 if quiet or as_json else 1,
                                      **({} if epochs is None else {"epochs": epochs}))
        detector = ReconstructionAnomalyDetector(generator, **params)
        try:
            detector.fit(datasets.get("--train", ds).X)
        except (ValueError, TypeError) as exc:
            _fail(str(exc))
    try:
        scores = detector.score_samples(ds.X)
    except ValueError as exc:
        _fail(f"DIR: {exc}")
    decision = scores - detector.offset_
    outlier = ~(decision >= 0)  # NaN: outlier, as in predict
    flagged = np.flatnonzero(outlier)
    is_image = ds.X.ndim >= 3
    # the most abnormal first; a sample scored NaN (no score at all) before every scored one
    order = np.argsort(np.nan_to_num(scores[flagged], nan=-np.inf), kind="stable")
    mapped = flagged[order][:max_maps] if is_image else []
    from synthaug.io import listed_outputs

    previous = listed_outputs(output) if overwrite else set()
    heatmaps = {}
    for i in mapped:
        fig = detector.plot_error_maps(ds.X[i:i + 1], max_samples=1)
        fig.suptitle(names[i], fontsize=9)
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=100)
        heatmaps[i] = _heatmap_name(names[i], i, set(heatmaps.values()))
        atomic_write_bytes(output / heatmaps[i], png.getvalue())
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["file", "label", "score", "decision", "outlier", "heatmap"])
    for i, name in enumerate(names):
        label = "" if ds.y is None else ds.y[i]
        writer.writerow([name, label, f"{scores[i]:.6g}", f"{decision[i]:.6g}", int(outlier[i]),
                         heatmaps.get(i, "")])
    atomic_write_bytes(output / "scores.csv", table.getvalue().encode())
    written = ["scores.csv"] + (["maps/"] if heatmaps else [])
    files = [{"path": "scores.csv", "kind": "scores"}]
    files += [{"path": heatmaps[i], "kind": "heatmap"} for i in mapped]
    if model_path is None:
        detector.save(output / _DETECTOR_FILE, overwrite=overwrite)
        written.append(_DETECTOR_FILE)
        files.append({"path": _DETECTOR_FILE, "kind": "detector"})
    import synthaug

    skipped = [{"path": p, "reason": r} for d in datasets.values() for p, r in d.skipped]
    manifest = {"command": "synthaug detect", "synthaug_version": synthaug.__version__, "input": str(data),
                "detector": str(model_path) if model_path is not None else _DETECTOR_FILE,
                "anomaly_score": getattr(detector, "anomaly_score_", detector.anomaly_score), "threshold": float(detector.offset_),
                "n_samples": len(names), "n_flagged": int(len(flagged)), "files": files, "skipped": skipped}
    _remove_previous_outputs(output, previous, {f["path"] for f in files}, inputs=[model_path])
    atomic_write_bytes(output / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    if as_json:
        _echo_json(manifest)
    elif not quiet:
        click.echo(f"{len(flagged)} of {len(names)} samples flagged (score below {detector.offset_:.4g}); "
                   f"wrote {', '.join(written)} and manifest.json to {output}")
    if skipped:
        raise SystemExit(1)


# -- augment: real + synthetic data, or a synthetic DICOM series / NIfTI volume -------------------------
_AUGMENT_FORMATS = {"images": ("png", "npy"), "array": ("npy",), "dicom": ("dicom", "npy"), "nifti": ("nifti", "npy")}


def _augment_input_kind(path: Path) -> str:
    """'dicom', 'nifti', 'array' (.npy/.npz) or 'images' (a folder of images)."""
    from synthaug.integrations.medical import is_dicom_file

    name = path.name.lower()
    if path.is_file():
        if name.endswith((".nii", ".nii.gz")):
            return "nifti"
        if name.endswith((".npy", ".npz")):
            return "array"
        if name.endswith(".dcm") or is_dicom_file(path):
            return "dicom"
        raise click.BadParameter(f"{path}: expected a folder of images or DICOM files, a DICOM file, a NIfTI "
                                 "file (.nii, .nii.gz), .npy or .npz", param_hint="INPUT")
    if any(is_dicom_file(f) or f.suffix.lower() == ".dcm" for f in path.rglob("*") if f.is_file()):
        return "dicom"
    return "images"


def _augment_write_arrays(output: Path, X_real, y_real, X_syn, y_syn, record,
                          ed25519_key=None) -> list[tuple[str, str]]:
    """real.npy|npz and synthetic.npy|npz, and provenance.json for the synthetic file."""
    import io

    import numpy as np

    from synthaug.io import atomic_write_bytes
    from synthaug.provenance import record as provenance

    written = []
    for kind, X, y in (("real", X_real, y_real), ("synthetic", X_syn, y_syn)):
        if X is None:
            continue
        buf = io.BytesIO()
        if y is None:
            np.save(buf, X, allow_pickle=False)
            name = f"{kind}.npy"
        else:
            np.savez(buf, X=X, y=np.asarray(y))
            name = f"{kind}.npz"
        atomic_write_bytes(output / name, buf.getvalue())
        written.append((name, kind))
    name = written[-1][0]
    signed = provenance.sign_record({**record, "outputs": [{"name": name, "sha256": provenance.content_hash(X_syn)}]},
                                    ed25519_private_key=ed25519_key)
    atomic_write_bytes(output / provenance.SIDECAR_NAME, provenance.sidecar_bytes(signed))
    return written + [(provenance.SIDECAR_NAME, "provenance")]


@cli.command(cls=TensorFlowCommand)
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder, outside INPUT.")
@click.option("--format", "fmt", type=click.Choice(["png", "npy", "dicom", "nifti"]), default=None,
              help="What to write [default: png for image folders, npy for arrays, dicom for DICOM, nifti for NIfTI].")
@click.option("--model", type=click.Choice(MODELS), default="vae", show_default=True,
              help="Generator to train.")
@click.option("-n", "--n-samples", type=click.IntRange(min=1), default=None,
              help="Synthetic samples to write [default: --ratio 1].")
@click.option("--ratio", type=FINITE_POSITIVE, default=None,
              help="Synthetic samples per real training sample (image, or patch for DICOM/NIfTI).")
@click.option("--patch-size", type=click.IntRange(min=0), default=32, show_default=True,
              help="DICOM/NIfTI: train on square patches of this side (0: whole slices).")
@click.option("--window", type=click.Choice(["auto", "lung", "mediastinum", "soft_tissue", "bone", "brain",
                                             "percentile", "none"]), default="auto", show_default=True,
              help="DICOM/NIfTI intensities the generator sees: a CT window, MR percentiles, or none "
                   "(auto: soft_tissue for CT, percentile otherwise). Output is always in the input's units.")
@click.option("--series-uid", default=None,
              help="DICOM folder holding several series: the SeriesInstanceUID of the one to use.")
@click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True, help="Maximum training epochs.")
@click.option("--resize", type=ImageSize(), default=None,
              help="Image folders: resize images of other sizes to HxW (mixed sizes are refused without it).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed.")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty output folder (an earlier run's "
              "files, as its manifest.json lists them, are replaced; other files are kept).")
@c2pa_options
@ed25519_option
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON on stdout (for scripts).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or messages (errors still go to stderr).")
@config_option
def augment(input_path, output, fmt, model, n_samples, ratio, patch_size, window, series_uid, epochs, resize, seed,
            overwrite, c2pa_cert, c2pa_key, c2pa_alg, ed25519_key_file, as_json, quiet):
    """Train a generator on INPUT and write real + synthetic data (or a synthetic series) to OUTPUT.

    INPUT is a folder of images (class sub-folders = labels), a .npy/.npz file, a DICOM file or
    folder (one series), or a NIfTI volume (.nii, .nii.gz). Images: OUTPUT gets the real images and
    the synthetic ones side by side (same class sub-folders, real_*.png and synthetic_*.png) and
    provenance.json. DICOM: a new synthetic series (new UIDs, no patient identifiers, SYNTHETIC in
    the series description, the provenance record in every file) trained on patches of the input.
    NIfTI: synthetic.nii.gz with the input's affine. Always OUTPUT/manifest.json listing what was
    written. Nothing is written into INPUT.

    \b
    Example:
      synthaug augment ct-series/ -o synthetic-ct/ --format dicom --model gan --ratio 2
      synthaug augment images/ -o augmented/ -n 500 --epochs 200
    """
    if n_samples is not None and ratio is not None:
        raise click.UsageError("give --n-samples or --ratio, not both")
    if _overlaps(input_path, output):
        raise click.BadParameter(f"{output} overlaps {input_path}; write to a separate folder", param_hint="--output")
    _refuse_non_empty(output, overwrite)
    from synthaug.io import listed_outputs

    previous = listed_outputs(output) if overwrite else set()
    kind = _augment_input_kind(input_path)
    if series_uid is not None and kind != "dicom":
        raise click.BadParameter(f"{input_path} is {kind} input, not DICOM", param_hint="--series-uid")
    fmt = fmt or {"images": "png", "array": "npy", "dicom": "dicom", "nifti": "nifti"}[kind]
    if fmt not in _AUGMENT_FORMATS[kind]:
        raise click.BadParameter(f"{kind} input can be written as {' or '.join(_AUGMENT_FORMATS[kind])}, not {fmt}",
                                 param_hint="--format")
    if (c2pa_cert is not None or c2pa_key is not None) and fmt != "png":
        raise click.UsageError(f"--c2pa-cert/--c2pa-key sign PNG files; --format {fmt} writes none")
    c2pa_signer = _c2pa_signer(c2pa_cert, c2pa_key, c2pa_alg)
    ed25519_key = _ed25519_private_key(ed25519_key_file)
    import numpy as np

    import synthaug
    from synthaug.io import atomic_write_bytes

    ratio = 1.0 if ratio is None else ratio
    quiet = quiet or as_json
    generator = _make_generator(model, seed=seed, quiet=quiet, params=config_params(), epochs=epochs,
                                **({"decoder_output": "mean"} if model == "vae" else {}))
    manifest = {"command": "synthaug augment", "synthaug_version": synthaug.__version__,
                "input": str(input_path.resolve()), "input_kind": kind, "format": fmt, "model": model,
                "epochs": epochs, "seed": seed}
    exit_code, sources = 0, {}  # sources: a real copy's name -> the input it came from
    if kind in ("images", "array"):
        from synthaug.io import class_folder, encode_png, png_writable, sample_grid, write_samples
        from synthaug.provenance import build_record
        from synthaug.provenance.generated import carries_payload, is_markable

        ds = _read_or_fail(input_path, resize)
        exit_code = 1 if ds.skipped else 0
        if fmt == "png" and not png_writable(ds.X):
            raise click.BadParameter(f"png needs uint8 images or uint16 greyscale ones; {input_path} holds "
                                     f"{ds.X.dtype} data of shape {ds.X.shape}: use --format npy",
                                     param_hint="--format")
        try:
            generator.fit(ds.X, ds.y)
        except (ValueError, TypeError) as exc:
            _fail(str(exc))
        n = n_samples or max(1, int(round(ratio * len(ds.X))))
        out = generator.generate(n, random_state=seed)
        X_syn, y_syn = out if isinstance(out, tuple) else (out, None)
        record = build_record(generator, seed=seed, watermarked=is_markable(X_syn),
                              zero_bit=not carries_payload(X_syn),
                              extra={"command": "augment", "input": input_path.name})
        output.mkdir(parents=True, exist_ok=True)
        if fmt == "png":
            files = []
            width = len(str(len(ds.X)))
            for i, (image, source) in enumerate(zip(ds.X, _sample_names(input_path, ds))):
                name = f"real_{i:0{width}d}.png" if ds.y is None else f"{class_folder(ds.y[i].item())}/real_{i:0{width}d}.png"
                atomic_write_bytes(output / name, encode_png(image))
                sources[name] = source
                files.append((name, "real"))
            written = write_samples(X_syn, output, y=y_syn, overwrite=True, progress=not quiet, record=record,
                                    c2pa_signer=c2pa_signer, ed25519_private_key=ed25519_key)
            files += [(p.relative_to(output).as_posix(), "synthetic") for p in written]
            files.append(("provenance.json", "provenance"))
            try:
                sample_grid(X_syn[:100], output / "grid.png", overwrite=True, record=record,
                            ed25519_private_key=ed25519_key)
                files.append(("grid.png", "grid"))
            except ValueError:
                pass  # tabular samples that are not images get no grid
        else:
            files = _augment_write_arrays(output, ds.X, ds.y, X_syn, y_syn, record, ed25519_key)
        manifest.update(n_real=int(len(ds.X)), n_synthetic=int(n),
                        classes=None if ds.class_names is None else list(ds.class_names),
                        skipped=[{"path": p, "reason": r} for p, r in ds.skipped])
    else:
        from synthaug.integrations.medical import MedicalAugmenter, read_dicom, read_nifti

        try:
            image = read_nifti(input_path) if kind == "nifti" else read_dicom(input_path, series_uid=series_uid)
        except (ValueError, OSError) as exc:
            _fail(str(exc))
        for bad, reason in image.skipped:  # on stderr even with -q, as for image folders
            click.echo(f"skipped {bad}: {reason}", err=True)
        exit_code = 1 if image.skipped else 0
        augmenter = MedicalAugmenter(generator, patch_size=patch_size or None,
                                     intensity=None if window == "none" else window, random_state=seed)
        try:
            augmenter.fit(image)
        except (ValueError, TypeError) as exc:
            _fail(str(exc))
        n = n_samples or max(1, int(round(ratio * augmenter.n_training_samples_)))
        X_syn = augmenter.generate(n, random_state=seed)
        output.mkdir(parents=True, exist_ok=True)
        if fmt == "npy":
            files = _augment_write_arrays(output, None, None, X_syn, None, augmenter.provenance_record(X_syn, seed),
                                          ed25519_key)
        else:
            try:
                written = augmenter.write(X_syn, output, format=fmt, seed=seed, overwrite=True,
                                          ed25519_private_key=ed25519_key)
            except ValueError as exc:
                _fail(str(exc))
            files = [(p.relative_to(output).as_posix(), "synthetic") for p in written]
        manifest.update(n_real_slices=int(len(image.slices())), n_training_samples=augmenter.n_training_samples_,
                        n_synthetic=int(n), sample_shape=list(augmenter.sample_shape_), units=image.units,
                        dtype=np.dtype(augmenter.dtype_).name, patch_size=patch_size or None, window=window,
                        modality=image.modality, skipped=[{"path": p, "reason": r} for p, r in image.skipped])
    manifest["files"] = [{"path": name, "kind": what, **({"source": sources[name]} if name in sources else {})}
                         for name, what in files]
    _remove_previous_outputs(output, previous, {name for name, _ in files})
    atomic_write_bytes(output / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    if as_json:
        _echo_json(manifest)
    elif not quiet:
        n_synthetic = sum(what == "synthetic" for _, what in files)
        click.echo(f"wrote {len(files)} files ({n_synthetic} synthetic) and manifest.json to {output}")
    if exit_code:
        raise SystemExit(exit_code)


# -- models: the pretrained generators shipped with synthaug ----------------------------------------
def _models_table(cards: list) -> str:
    rows = [("name", "type", "data", "samples", "size")]
    for c in cards:
        shape = "×".join(map(str, c["sample_shape"]))
        labels = f", {len(c['classes'])} classes" if c.get("classes") else ""
        rows.append((c["name"], c["model_type"], c["data"]["name"].split(" (")[0], f"{shape} {c['dtype']}{labels}",
                     f"{c['size_bytes'] / 1e6:.1f} MB"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one object per model, or NAME's whole card.")
def models(name, as_json):
    """List the pretrained generators shipped with synthaug, or show the model card of NAME.

    Each is a small model trained by scripts/train_pretrained.py on data shipped in pip packages;
    its card gives the data and its licence, the training command, metrics on held-out data,
    intended use and limits. Draw from one with `synthaug generate --pretrained NAME`, or in
    Python with `synthaug.pretrained.load(NAME)`.

    \b
    Example:
      synthaug models
      synthaug models digits-vae
      synthaug generate --pretrained digits-vae -n 100 -o out/
    """
    import synthaug.pretrained as registry

    available = registry.names()
    if name is not None and name not in available:
        raise click.BadParameter(f"no pretrained generator named {name!r}; available: {', '.join(available)}",
                                 param_hint="NAME")
    if name is not None:
        click.echo(json.dumps(registry.card(name), indent=1, ensure_ascii=False) if as_json else registry.card_text(name))
        return
    cards = [registry.card(n) for n in available]
    if as_json:
        keys = ("name", "description", "model_type", "sample_shape", "dtype", "classes", "size_bytes", "file", "sha256")
        click.echo(json.dumps([{**{k: c.get(k) for k in keys}, "data": c["data"]["name"]} for c in cards], indent=1,
                              ensure_ascii=False))
        return
    if not cards:
        click.echo("no pretrained generators in this installation")
        return
    click.echo(_models_table(cards))
    click.echo("\nsynthaug models NAME shows a model card; synthaug generate --pretrained NAME -n 100 -o out/ draws samples")
