import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from synthaug.cli import cli


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_digits_vae):
    """digits.npz (all of digits, labelled) and a tiny VAE fitted on its digits-protocol train split."""
    root = tmp_path_factory.mktemp("evaluate")
    d = load_digits()
    np.savez(root / "digits.npz", X=d.images, y=d.target)
    _, model = tiny_digits_vae
    (root / "tiny.synthaug").write_bytes(model.read_bytes())
    return root


def test_evaluate_a_saved_model(files, tmp_path):
    png, report_json = tmp_path / "report.png", tmp_path / "report.json"
    args = ["evaluate", str(files / "digits.npz"), str(files / "tiny.synthaug"), "-o", str(png),
            "--metrics", str(report_json), "-n", "300"]
    runner = CliRunner()
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "frechet_distance" in result.stdout and "tstr_accuracy" in result.stdout
    with Image.open(png) as img:
        assert img.format == "PNG"
    report = json.loads(report_json.read_text())
    assert report["info"]["n_train"] == 1347 and report["info"]["n_holdout"] == 450
    assert report["info"]["n_synthetic"] == 300 and report["info"]["synthetic_source"] == "VAE.generate"
    assert 0 <= report["metrics"]["precision"] <= 1
    # refuses to clobber, before any work
    result = runner.invoke(cli, args)
    assert result.exit_code == 2 and "exists" in result.output


def test_evaluate_shape_mismatch_is_a_clear_error(files, tmp_path):
    d = load_digits()
    np.savez(tmp_path / "flat.npz", X=d.data[:100], y=d.target[:100])
    runner = CliRunner()
    result = runner.invoke(cli, ["evaluate", str(files / "digits.npz"), str(tmp_path / "flat.npz"),
                                 "-o", str(tmp_path / "r.png")])
    assert result.exit_code == 1, result.output
    assert "(64,)" in result.output and "(8, 8)" in result.output and "same shape" in result.output
    assert not (tmp_path / "r.png").exists()
    np.savez(tmp_path / "flat_real.npz", X=d.data, y=d.target)
    result = runner.invoke(cli, ["evaluate", str(tmp_path / "flat_real.npz"), str(files / "tiny.synthaug"),
                                 "-o", str(tmp_path / "r.png")])
    assert result.exit_code == 1 and "generates samples of shape (8, 8)" in result.output
    result = runner.invoke(cli, ["evaluate", str(files / "digits.npz"), str(files / "tiny.synthaug"),
                                 "-o", str(tmp_path / "r.jpg")])
    assert result.exit_code == 2 and "the report is a PNG image; name it *.png, not r.jpg" in result.output


def test_evaluate_a_folder_of_images_against_labelled_arrays(files, tmp_path):
    # Folder labels are strings ("3"), the .npz labels integers: the command matches them.
    d = load_digits()
    _, X_syn, _, y_syn = train_test_split(d.images, d.target, test_size=0.1, random_state=1, stratify=d.target)
    for i, (image, label) in enumerate(zip(X_syn, y_syn)):
        folder = tmp_path / "synthetic" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.astype(np.uint8)).save(folder / f"{i}.png")
    result = CliRunner().invoke(cli, ["evaluate", str(files / "digits.npz"), str(tmp_path / "synthetic"),
                                      "-o", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert "tstr_accuracy" in result.stdout and "label_agreement" in result.stdout
    assert (tmp_path / "r.png").exists()
    # --json: the report's metrics on stdout for scripts, no table
    result = CliRunner().invoke(cli, ["evaluate", str(files / "digits.npz"), str(tmp_path / "synthetic"),
                                      "-o", str(tmp_path / "r2.png"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["metrics"]["tstr_accuracy"] > 0.5 and report["info"]["holdout"]

    # a folder of mixed sizes: refused, naming --resize, which evaluate has
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "synthetic" / "3" / "big.png")
    args = ["evaluate", str(files / "digits.npz"), str(tmp_path / "synthetic"), "-o", str(tmp_path / "r3.png")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "--resize HxW" in result.output
    result = CliRunner().invoke(cli, [*args, "--resize", "8x8", "-q"])
    assert result.exit_code == 0, result.output


def test_evaluate_refuses_an_output_that_is_another_output_or_an_input(files, tmp_path):
    base = ["evaluate", str(files / "digits.npz"), str(files / "tiny.synthaug")]
    same = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "r.png"), "--metrics", str(tmp_path / "r.png")])
    assert same.exit_code == 2 and "is also the report (-o)" in same.output
    copy = tmp_path / "digits.npz"
    copy.write_bytes((files / "digits.npz").read_bytes())
    onto_input = CliRunner().invoke(cli, ["evaluate", str(copy), str(files / "tiny.synthaug"), "-o",
                                          str(tmp_path / "r.png"), "--metrics", str(copy), "--overwrite"])
    assert onto_input.exit_code == 2 and "is the input REAL" in onto_input.output
    assert copy.read_bytes() == (files / "digits.npz").read_bytes() and not (tmp_path / "r.png").exists()
    bad_seed = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "r.png"), "--seed", "-1"])
    assert bad_seed.exit_code == 2 and "--seed" in bad_seed.output


def test_evaluate_names_a_test_set_without_labels(files, tmp_path):
    np.save(tmp_path / "unlabelled.npy", load_digits().images[:100])
    result = CliRunner().invoke(cli, ["evaluate", str(files / "digits.npz"), str(files / "tiny.synthaug"),
                                      "--test", str(tmp_path / "unlabelled.npy"), "-o", str(tmp_path / "r.png")])
    assert result.exit_code == 1 and "digits.npz has labels but unlabelled.npy has none" in result.output


def test_evaluate_refuses_a_report_inside_an_input_folder(files, tmp_path):
    real = tmp_path / "real"
    (real / "zero").mkdir(parents=True)
    for i, image in enumerate(load_digits().images[:12]):
        Image.fromarray((image * 15).astype(np.uint8)).save(real / "zero" / f"{i}.png")
    inside = CliRunner().invoke(cli, ["evaluate", str(real), str(real), "-o", str(real / "zero" / "report.png")])
    assert inside.exit_code == 2 and "is inside the input folder REAL" in inside.output
    metrics = CliRunner().invoke(cli, ["evaluate", str(files / "digits.npz"), str(real), "-o", str(tmp_path / "r.png"),
                                       "--metrics", str(real / "m.json")])
    assert metrics.exit_code == 2 and "--metrics" in metrics.output
    assert sorted(p.name for p in real.rglob("*") if p.is_file()) == sorted(f"{i}.png" for i in range(12))


def test_evaluate_leaves_out_an_augment_folders_real_copies(tmp_path):
    digits = load_digits()
    real, out = tmp_path / "real", tmp_path / "augmented"
    for label in (0, 1):
        (real / str(label)).mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == label][:20]):
            Image.fromarray((image * 15).astype(np.uint8)).save(real / str(label) / f"{i}.png")
    made = CliRunner().invoke(cli, ["augment", str(real), "-o", str(out), "--epochs", "1", "-n", "12", "-q"])
    assert made.exit_code == 0, made.output
    result = CliRunner().invoke(cli, ["evaluate", str(real), str(out), "-o", str(tmp_path / "r.png"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["info"]["n_synthetic"] == 12  # not 12 + the 40 real copies
    assert report["metrics"]["exact_copy_share"] < 0.5
    noted = CliRunner().invoke(cli, ["evaluate", str(real), str(out), "-o", str(tmp_path / "r2.png")])
    assert "left out 40 real image(s)" in noted.stderr


def test_evaluate_states_each_warning_once_and_quiet_silences_them(files, tmp_path):
    d = load_digits()
    np.savez(tmp_path / "few.npz", X=d.images[:40], y=d.target[:40] % 2)
    args = ["evaluate", str(tmp_path / "few.npz"), str(tmp_path / "few.npz")]
    loud = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "a.png")])
    assert loud.exit_code == 0, loud.output
    lines = [line for line in loud.stderr.splitlines() if line.startswith("warning: ")]
    assert lines and len(lines) == len(set(lines)) and "Fréchet distance is unreliable" in loud.stderr
    assert "UserWarning" not in loud.stderr
    quiet = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "b.png"), "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_evaluate_reads_a_generate_folder_of_arrays(files, tmp_path):
    out = tmp_path / "generated"
    assert CliRunner().invoke(cli, ["generate", str(files / "tiny.synthaug"), "-n", "60", "-o", str(out),
                                    "-q"]).exit_code == 0
    assert (out / "samples.npz").is_file()  # float digits: no PNGs
    result = CliRunner().invoke(cli, ["evaluate", str(files / "digits.npz"), str(out), "-o", str(tmp_path / "r.png"),
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["info"]["n_synthetic"] == 60
