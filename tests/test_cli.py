import json
import subprocess
import sys

import numpy as np
from click.testing import CliRunner
from PIL import Image
from sklearn.datasets import load_digits

import synthaug
from synthaug.cli import cli


def test_every_help_answers_without_importing_tensorflow():
    # In a fresh interpreter: this test process has imported TensorFlow already.
    code = (
        "import json, sys; from click.testing import CliRunner; from synthaug.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output\n"
        "for name in cli.commands:\n"
        "    r = CliRunner().invoke(cli, [name, '--help'])\n"
        "    assert r.exit_code == 0 and 'Example' in r.output and f'synthaug {name}' in r.output, (name, r.output)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "print(json.dumps(sorted(cli.commands)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert {"fit", "generate", "evaluate", "detect", "verify"} <= set(json.loads(out))


def _image_folder(root):
    d = load_digits()
    for label in (0, 1):
        folder = root / "images" / str(label)
        folder.mkdir(parents=True)
        for i, img in enumerate(d.images[d.target == label][:15]):
            Image.fromarray((img * 15).astype(np.uint8)).save(folder / f"{i}.png")
    (root / "images" / "1" / "broken.png").write_bytes(b"not a png")
    return root / "images"


def test_fit_then_generate_on_image_folder(tmp_path):
    images = _image_folder(tmp_path)
    runner = CliRunner()
    model = tmp_path / "m.synthaug"
    result = runner.invoke(cli, ["fit", str(images), "-o", str(model), "--epochs", "2", "-q"])
    # the corrupt file is skipped, reported, and the exit code says so
    assert result.exit_code == 1, result.output
    assert "broken.png" in result.stderr
    est = synthaug.load(model)
    assert list(est.classes_) == ["0", "1"] and est.input_shape_ == (8, 8)
    out = tmp_path / "out"
    result = runner.invoke(cli, ["generate", str(model), "-n", "6", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 6 samples (6 file(s)) and provenance.json, grid.png, manifest.json" in result.output
    pngs = sorted(out.glob("*/*.png"))
    assert len(pngs) == 6 and np.asarray(Image.open(pngs[0])).dtype == np.uint8
    assert (out / "grid.png").exists()
    # refuses to clobber
    result = runner.invoke(cli, ["generate", str(model), "-n", "6", "-o", str(out)])
    assert result.exit_code == 2 and "not empty; pass --overwrite" in result.output
    result = runner.invoke(cli, ["fit", str(images), "-o", str(model), "--epochs", "1", "-q"])
    assert result.exit_code == 2 and "exists" in result.output


def test_fit_npz_and_bad_model_file(tmp_path):
    d = load_digits()
    np.savez(tmp_path / "d.npz", X=d.data[:100], y=d.target[:100])
    runner = CliRunner()
    result = runner.invoke(cli, ["fit", str(tmp_path / "d.npz"), "-o", str(tmp_path / "m.synthaug"),
                                 "--epochs", "2", "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["generate", str(tmp_path / "m.synthaug"), "-n", "5", "-o", str(tmp_path / "o")])
    assert result.exit_code == 0 and (tmp_path / "o" / "samples.npz").exists()
    (tmp_path / "bad.synthaug").write_text("hello")
    result = runner.invoke(cli, ["generate", str(tmp_path / "bad.synthaug"), "-n", "5", "-o", str(tmp_path / "p")])
    assert result.exit_code == 1 and "not a synthaug model file" in result.output


def test_pose_model_refuses_tabular_data_and_a_latent_dimension(tmp_path):
    d = load_digits()
    np.savez(tmp_path / "d.npz", X=d.data[:50], y=d.target[:50])
    args = ["fit", str(tmp_path / "d.npz"), "-o", str(tmp_path / "m.synthaug"), "--model", "pose", "-q"]
    result = CliRunner().invoke(cli, args + ["--latent-dim", "3"])
    assert result.exit_code == 2 and "--model pose has no latent dimension" in result.output
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "PoseModel needs images" in result.output
    assert not (tmp_path / "m.synthaug").exists()


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["fit", str(tmp_path / "empty"), "-o", str(tmp_path / "m.synthaug")])
    assert result.exit_code == 1 and "no readable images" in result.output


def test_demo_writes_model_samples_grid_and_report(tmp_path):

    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "-o", str(out), "--epochs", "2", "--n-importance", "10"])
    assert result.exit_code == 0, result.output
    for name in ("digits-vae.synthaug", "grid.png", "report.png", "report.json", "samples/samples.npz"):
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    assert {"frechet_distance", "tstr_accuracy", "near_copy_share"} <= set(report["evaluation"]["metrics"])
    assert "tstr_accuracy" in result.output
    again = CliRunner().invoke(cli, ["demo", "-o", str(out), "--epochs", "2", "--n-importance", "10"])
    assert again.exit_code == 2 and "not empty" in again.output


def test_generate_chosen_classes_without_watermark_and_a_manifest(tmp_path):
    out = tmp_path / "faces"
    result = CliRunner().invoke(cli, ["generate", "--pretrained", "lfw-faces", "-n", "5", "-o", str(out),
                                      "--label", "face", "--no-watermark", "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["pretrained"] == "lfw-faces" and manifest["sample_shape"] == [25, 25]
    synthetic = [f["path"] for f in manifest["files"] if f["kind"] == "synthetic"]
    assert len(synthetic) == 5 and all(p.startswith("face/") for p in synthetic)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    record = json.loads((out / "provenance.json").read_text())
    assert record["watermark"]["scheme"] is None  # the record says the pixels carry no mark
    wrong = CliRunner().invoke(cli, ["generate", "--pretrained", "lfw-faces", "-n", "5", "-o", str(tmp_path / "x"),
                                     "--label", "cat"])
    assert wrong.exit_code == 2 and "unknown class(es) cat" in wrong.output and "non-face" in wrong.output


def test_overwrite_replaces_the_earlier_runs_files_and_keeps_the_users(tmp_path):
    d = load_digits()
    np.savez(tmp_path / "d.npz", X=(d.images[:60] * 15).astype(np.uint8), y=d.target[:60] % 3)
    model = tmp_path / "m.synthaug"
    runner = CliRunner()
    assert runner.invoke(cli, ["fit", str(tmp_path / "d.npz"), "-o", str(model), "--epochs", "1", "-q"]).exit_code == 0
    out = tmp_path / "out"
    assert runner.invoke(cli, ["generate", str(model), "-n", "30", "-o", str(out), "-q"]).exit_code == 0
    (out / "mine.txt").write_text("not written by synthaug")
    result = runner.invoke(cli, ["generate", str(model), "-n", "3", "-o", str(out), "-q", "--overwrite",
                                 "--label", "1"])
    assert result.exit_code == 0, result.output
    listed = {f["path"] for f in json.loads((out / "manifest.json").read_text())["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == listed | {"manifest.json", "mine.txt"}  # nothing of the first run is left
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["1"]  # emptied class folders are gone


def test_fit_refuses_a_folder_or_a_path_inside_the_data_as_its_output(tmp_path):
    images = _image_folder(tmp_path)
    (tmp_path / "models").mkdir()
    for output, message in ((tmp_path / "models", "is a folder; give the path of the model file"),
                            (images / "m.synthaug", "is inside")):
        result = CliRunner().invoke(cli, ["fit", str(images), "-o", str(output), "--overwrite", "-q"])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (images / "m.synthaug").exists()


def test_a_model_file_with_a_damaged_keras_model_is_named(tmp_path):
    import zipfile

    from synthaug.io import archive_bytes

    d = load_digits()
    good = synthaug.VAE(epochs=1, latent_dim=2, hidden_units=(8,)).fit(d.data[:40]).save(tmp_path / "good.synthaug")
    with zipfile.ZipFile(good) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members["model.keras"] = members["model.keras"][:200]
    (tmp_path / "bad.synthaug").write_bytes(archive_bytes(members))
    result = CliRunner().invoke(cli, ["generate", str(tmp_path / "bad.synthaug"), "-n", "3", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "bad.synthaug is damaged: its Keras model (model.keras) cannot be read" in \
        result.output
    assert not (tmp_path / "o").exists()


def test_pose_fit_reports_its_steps_and_prints_progress_on_stderr(tmp_path):
    d = load_digits()
    np.savez(tmp_path / "d.npz", X=d.images[:40], y=d.target[:40])
    result = CliRunner().invoke(cli, ["fit", str(tmp_path / "d.npz"), "-o", str(tmp_path / "p.synthaug"),
                                      "--model", "pose", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("(40 samples, 1 epoch)") and "round 1/3" in result.stderr


def test_resize_values_are_checked_before_any_reading(tmp_path):
    images = _image_folder(tmp_path)
    for value, message in (("0x8", "must be positive"), ("100000x100000", "at most 8192 pixels a side"),
                           ("8 by 8", "is not an image size")):
        result = CliRunner().invoke(cli, ["fit", str(images), "-o", str(tmp_path / "m.synthaug"), "--resize", value])
        assert result.exit_code == 2 and message in result.output, (value, result.output)


def test_labels_that_cannot_be_folders_stop_generate_before_writing(tmp_path):
    d = load_digits()
    X = (d.images[:60] * 15).astype(np.uint8)
    np.savez(tmp_path / "slash.npz", X=X, y=np.where(d.target[:60] % 2 == 0, "N/A", "ok"))
    runner = CliRunner()
    fitted = runner.invoke(cli, ["fit", str(tmp_path / "slash.npz"), "-o", str(tmp_path / "m.synthaug"),
                                 "--epochs", "1", "-q"])
    assert fitted.exit_code == 0, fitted.output
    out = tmp_path / "out"
    generated = runner.invoke(cli, ["generate", str(tmp_path / "m.synthaug"), "-n", "6", "-o", str(out)])
    assert generated.exit_code == 1 and "label 'N/A' cannot name a class folder" in generated.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.synthaug", "slash.npz"]


def test_nan_and_infinite_numbers_are_usage_errors(tmp_path):
    np.savez(tmp_path / "d.npz", X=load_digits().images[:20])
    runner = CliRunner()
    for value in ("nan", "inf"):
        ratio = runner.invoke(cli, ["augment", str(tmp_path / "d.npz"), "-o", str(tmp_path / "o"), "--ratio", value])
        assert ratio.exit_code == 2 and f"'{value}' is not a finite number" in ratio.output
        fpr = runner.invoke(cli, ["verify", str(tmp_path / "d.npz"), "--fpr", value])
        assert fpr.exit_code == 2 and "--fpr" in fpr.output
    demo = runner.invoke(cli, ["demo", "-o", str(tmp_path / "demo"), "--epochs", "0"])
    assert demo.exit_code == 2 and "--epochs" in demo.output and not (tmp_path / "demo").exists()


def test_options_on_the_command_line_win_over_config_params(tmp_path):
    np.savez(tmp_path / "d.npz", X=load_digits().data[:100])
    (tmp_path / "c.toml").write_text("[params]\nepochs = 3\nvalidation_fraction = 0.0\n")
    runner = CliRunner()
    args = ["fit", str(tmp_path / "d.npz"), "--config", str(tmp_path / "c.toml"), "--json"]
    given = runner.invoke(cli, [*args, "-o", str(tmp_path / "a.synthaug"), "--epochs", "1"])
    assert given.exit_code == 0, given.output
    assert json.loads(given.stdout)["epochs_run"] == 1
    from_params = runner.invoke(cli, [*args, "-o", str(tmp_path / "b.synthaug")])
    assert json.loads(from_params.stdout)["epochs_run"] == 3  # [params] still beats the option's default


def test_a_model_file_with_a_damaged_description_is_named(tmp_path):
    import zipfile

    d = load_digits()
    np.savez(tmp_path / "d.npz", X=d.data[:100])
    assert CliRunner().invoke(cli, ["fit", str(tmp_path / "d.npz"), "-o", str(tmp_path / "m.synthaug"),
                                    "--epochs", "1", "-q"]).exit_code == 0
    with zipfile.ZipFile(tmp_path / "m.synthaug") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(members["synthaug.json"])
    for name, edit, expected in (("nostate", lambda m: m.pop("state"), "lacks 'state'"),
                                 ("badparam", lambda m: m["params"].update(latent_dim="eight"), "latent_dim")):
        changed = json.loads(json.dumps(meta))
        edit(changed)
        with zipfile.ZipFile(tmp_path / f"{name}.synthaug", "w") as archive:
            for member, data in members.items():
                archive.writestr(member, json.dumps(changed) if member == "synthaug.json" else data)
        result = CliRunner().invoke(cli, ["generate", str(tmp_path / f"{name}.synthaug"), "-n", "2",
                                          "-o", str(tmp_path / name)])
        assert result.exit_code == 1 and "is damaged: its synthaug.json does not describe a fitted VAE" in result.output
        assert expected in result.output and "Traceback" not in result.output
