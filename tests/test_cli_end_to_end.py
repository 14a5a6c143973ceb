"""The installed ``synthaug`` executable on a temporary folder, as a person or a script runs it:
mixed image sizes, a corrupt file, a config file, JSON output, and an existing output folder."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

SYNTHAUG = Path(sys.executable).parent / "synthaug"


def run(*args, cwd):
    return subprocess.run([str(SYNTHAUG), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Two classes of digits as PNGs, some enlarged to 16×16, plus a corrupt file; a TOML config."""
    root = tmp_path_factory.mktemp("e2e")
    d = load_digits()
    for label in (3, 7):
        folder = root / "images" / str(label)
        folder.mkdir(parents=True)
        for i, img in enumerate(d.images[d.target == label][:40]):
            image = Image.fromarray((img * 15).astype(np.uint8))
            (image.resize((16, 16)) if i % 4 == 0 else image).save(folder / f"{i}.png")
    (root / "images" / "7" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "gan.toml").write_text('model = "gan"\nepochs = 3\nresize = "8x8"\n\n[params]\nhidden_units = [32]\n')
    return root


@pytest.mark.skipif(not SYNTHAUG.exists(), reason="the synthaug console script is not installed")
def test_fit_generate_augment_through_the_executable(workdir):
    before = sorted(p.relative_to(workdir) for p in (workdir / "images").rglob("*"))

    # mixed sizes are refused, naming the option that fixes them
    refused = run("fit", "images", "-o", "m.synthaug", "--epochs", "1", "-q", cwd=workdir)
    assert refused.returncode == 1 and "--resize" in refused.stderr, refused.stderr[-2000:]

    # config file + JSON summary; the corrupt file is skipped, listed, and the exit code says so
    fitted = run("fit", "images", "-o", "gan.synthaug", "--config", "gan.toml", "--json", cwd=workdir)
    assert fitted.returncode == 1, fitted.stderr[-2000:]
    summary = json.loads(fitted.stdout)
    assert summary["model"] == "GAN" and summary["epochs_run"] == 3 and summary["n_samples"] == 80
    assert summary["sample_shape"] == [8, 8] and summary["classes"] == ["3", "7"]
    assert [Path(s["path"]).name for s in summary["skipped"]] == ["corrupt.png"]
    assert "corrupt.png" in fitted.stderr

    generated = run("generate", "gan.synthaug", "-n", "10", "-o", "synthetic", "--seed", "1", "-q", cwd=workdir)
    assert generated.returncode == 0 and generated.stdout == "", generated.stderr[-2000:]
    assert generated.stderr == ""  # -q: not even TensorFlow's start-up log lines
    pngs = sorted(p.relative_to(workdir / "synthetic").as_posix() for p in (workdir / "synthetic").glob("*/*.png"))
    assert len(pngs) == 10
    listed = json.loads((workdir / "synthetic" / "manifest.json").read_text())["files"]
    assert sorted(f["path"] for f in listed if f["kind"] == "synthetic") == pngs
    assert {"provenance.json", "grid.png"} <= {f["path"] for f in listed}

    augmented = run("augment", "images", "-o", "augmented", "--resize", "8x8", "--epochs", "2", "-n", "20",
                    "--json", cwd=workdir)
    assert augmented.returncode == 1, augmented.stderr[-2000:]  # the corrupt file again
    manifest = json.loads(augmented.stdout)
    assert manifest == json.loads((workdir / "augmented" / "manifest.json").read_text())
    kinds = [f["kind"] for f in manifest["files"]]
    assert kinds.count("real") == 80 and kinds.count("synthetic") == 20 and "grid" in kinds
    assert {p.parent.name for p in (workdir / "augmented").glob("*/synthetic_*.png")} == {"3", "7"}

    # an existing output folder is refused (exit 2) and left as it was; --overwrite writes into it
    again = run("augment", "images", "-o", "augmented", "--resize", "8x8", "--epochs", "1", cwd=workdir)
    assert again.returncode == 2 and "not empty" in again.stderr
    assert json.loads((workdir / "augmented" / "manifest.json").read_text()) == manifest
    model_again = run("fit", "images", "-o", "gan.synthaug", "--config", "gan.toml", cwd=workdir)
    assert model_again.returncode == 2 and "exists" in model_again.stderr

    # the input folder is untouched
    assert sorted(p.relative_to(workdir) for p in (workdir / "images").rglob("*")) == before


def test_config_errors_are_usage_errors(workdir, tmp_path):
    from click.testing import CliRunner

    from synthaug.cli import cli

    (tmp_path / "typo.toml").write_text('epoch = 3\n')
    (tmp_path / "broken.toml").write_text('epochs = \n')
    (tmp_path / "params.json").write_text('{"model": "flow", "resize": [8, 8], "params": {"latent_dim": 2}}')
    runner = CliRunner()
    images = workdir / "images"
    typo = runner.invoke(cli, ["fit", str(images), "-o", str(tmp_path / "m"), "--config", str(tmp_path / "typo.toml")])
    assert typo.exit_code == 2 and "unknown option(s) epoch" in typo.output and "epochs" in typo.output
    assert "json" in typo.output and "as_json" not in typo.output  # options as the command line spells them
    (tmp_path / "spelled.toml").write_text('json = true\nlatent_dim = 2\nepochs = 1\n')
    spelled = runner.invoke(cli, ["fit", str(images), "-o", str(tmp_path / "s.synthaug"), "--resize", "8x8",
                                  "--config", str(tmp_path / "spelled.toml")])
    assert json.loads(spelled.stdout)["epochs_run"] == 1  # json = true turned on --json
    broken = runner.invoke(cli, ["fit", str(images), "-o", str(tmp_path / "m"), "--config",
                                 str(tmp_path / "broken.toml")])
    assert broken.exit_code == 2 and "invalid TOML" in broken.output
    params = runner.invoke(cli, ["fit", str(images), "-o", str(tmp_path / "m"), "--config",
                                 str(tmp_path / "params.json")])
    assert params.exit_code == 2 and "Flow has no parameter(s) latent_dim" in params.output
    # the command line wins over the file, whose [params] still apply
    both = runner.invoke(cli, ["fit", str(images), "-o", str(tmp_path / "m.synthaug"), "--config",
                               str(tmp_path / "params.json"), "--model", "vae", "--epochs", "1",
                               "-q"])
    assert both.exit_code == 1, both.output  # 1: the corrupt file was skipped
    import synthaug

    vae = synthaug.load(tmp_path / "m.synthaug")
    assert type(vae).__name__ == "VAE" and vae.latent_dim == 2 and vae.epochs == 1
