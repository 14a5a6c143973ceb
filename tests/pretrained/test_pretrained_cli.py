"""`synthaug models` and `synthaug generate --pretrained`, through click and through the installed executable."""
import json
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import synthaug.pretrained as pretrained
from synthaug.cli import cli


def test_models_table_card_and_json():
    runner = CliRunner()
    result = runner.invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    for name in pretrained.names():
        card = pretrained.card(name)
        line = next(line for line in result.output.splitlines() if line.startswith(name + " "))
        assert card["model_type"] in line and f"{card['size_bytes'] / 1e6:.1f} MB" in line
    result = runner.invoke(cli, ["models", "ct-patches"])
    assert result.exit_code == 0 and "# ct-patches" in result.output and "NOT FOR CLINICAL USE" in result.output
    listed = json.loads(runner.invoke(cli, ["models", "--json"]).output)
    assert [m["name"] for m in listed] == pretrained.names()
    assert all(m["sha256"] == pretrained.card(m["name"])["sha256"] for m in listed)
    assert json.loads(runner.invoke(cli, ["models", "digits-vae", "--json"]).output) == pretrained.card("digits-vae")
    result = runner.invoke(cli, ["models", "digits-vea"])
    assert result.exit_code == 2 and "available: " in result.stderr and "digits-vae" in result.stderr


def test_generate_pretrained_writes_labelled_pngs(tmp_path):
    out = tmp_path / "faces"
    result = CliRunner().invoke(cli, ["generate", "--pretrained", "lfw-faces", "-n", "6", "-o", str(out)])
    assert result.exit_code == 0, result.output
    pngs = sorted(out.glob("*/*.png"))
    assert len(pngs) == 6 and {p.parent.name for p in pngs} <= {"face", "non-face"}
    image = np.asarray(Image.open(pngs[0]))
    assert image.shape == (25, 25) and image.dtype == np.uint8
    record = json.loads((out / "provenance.json").read_text())
    assert "lfw-faces" in json.dumps(record)
    assert (out / "grid.png").is_file()


def test_generate_needs_exactly_one_source_and_a_fresh_folder(tmp_path):
    runner = CliRunner()
    model_file = pretrained._files() / "digits-gan.synthaug"
    for args in ([], [str(model_file), "--pretrained", "digits-vae"]):
        result = runner.invoke(cli, ["generate", *args, "-n", "2", "-o", str(tmp_path / "x")])
        assert result.exit_code == 2 and "MODEL file or --pretrained NAME" in result.stderr
    result = runner.invoke(cli, ["generate", "--pretrained", "digits-vea", "-n", "2", "-o", str(tmp_path / "x")])
    assert result.exit_code == 2 and "available: " in result.stderr and "digits-gan" in result.stderr
    assert not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    result = runner.invoke(cli, ["generate", "--pretrained", "digits-gan", "-n", "2", "-o", str(tmp_path / "full")])
    assert result.exit_code == 2 and "not empty" in result.stderr
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["mine.txt"]


def test_installed_executable_generates_from_a_pretrained_model(tmp_path):
    exe = shutil.which("synthaug")
    if exe is None:
        pytest.skip("the synthaug executable is not installed on PATH")
    out = tmp_path / "out"
    run = subprocess.run([exe, "generate", "--pretrained", "digits-vae", "-n", "30", "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    with np.load(out / "samples.npz") as f:
        X, y = f["X"], f["y"]
    assert X.shape == (30, 8, 8) and set(np.unique(X)) <= set(range(17)) and set(y) <= set(range(10))
    assert (out / "grid.png").is_file() and (out / "provenance.json").is_file()
    listed = subprocess.run([exe, "models", "--json"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and {m["name"] for m in json.loads(listed.stdout)} == set(pretrained.names())
