"""``synthaug detect``: fit or load a detector, write scores.csv and heat maps, never touch the input."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn.datasets import load_digits

from synthaug.cli import cli


def write_pngs(folder, images, prefix):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray((image * 15).astype(np.uint8)).save(folder / f"{prefix}_{i:03d}.png")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """normal/: 100 zeros; mixed/: 30 other zeros and 6 ones, as uint8 PNGs."""
    root = tmp_path_factory.mktemp("detect")
    d = load_digits()
    zeros, ones = d.images[d.target == 0], d.images[d.target == 1]
    write_pngs(root / "normal", zeros[:100], "zero")
    write_pngs(root / "mixed", zeros[100:130], "zero")
    write_pngs(root / "mixed", ones[:6], "one")
    return root


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def fitted_run(folders):
    """One fit: train on normal/, score mixed/ (a short training keeps the test fast)."""
    out = folders / "run-1"
    result = CliRunner().invoke(cli, ["detect", str(folders / "mixed"), "-o", str(out), "--train",
                                      str(folders / "normal"), "--epochs", "60", "--contamination", "0.05", "-q"])
    assert result.exit_code == 0, result.output
    return out


def test_detect_writes_scores_heat_maps_and_the_detector(folders, fitted_run):
    rows = read_csv(fitted_run / "scores.csv")
    assert [r["file"] for r in rows] == sorted(p.name for p in (folders / "mixed").iterdir())
    assert set(rows[0]) == {"file", "label", "score", "decision", "outlier", "heatmap"}
    for r in rows:
        assert np.isclose(float(r["decision"]) < 0, r["outlier"] == "1")
        assert (r["heatmap"] != "") == (r["outlier"] == "1")
        if r["heatmap"]:
            with Image.open(fitted_run / r["heatmap"]) as img:
                assert img.format == "PNG"
    ones = [float(r["score"]) for r in rows if r["file"].startswith("one")]
    zeros = [float(r["score"]) for r in rows if r["file"].startswith("zero")]
    assert np.median(ones) < np.median(zeros)
    assert sum(r["outlier"] == "1" for r in rows) >= 3
    assert (fitted_run / "detector.synthaug-detector").is_file()
    assert sorted(p.name for p in (folders / "mixed").iterdir()) == sorted(
        [f"zero_{i:03d}.png" for i in range(30)] + [f"one_{i:03d}.png" for i in range(6)])


def test_detect_with_a_saved_detector_gives_the_same_scores(folders, fitted_run, tmp_path):
    out = tmp_path / "run-2"
    result = CliRunner().invoke(cli, ["detect", str(folders / "mixed"), "-o", str(out), "--model",
                                      str(fitted_run / "detector.synthaug-detector")])
    assert result.exit_code == 0, result.output
    assert "flagged" in result.stdout
    first, second = read_csv(fitted_run / "scores.csv"), read_csv(out / "scores.csv")
    assert [r["score"] for r in first] == [r["score"] for r in second]
    assert not (out / "detector.synthaug-detector").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_samples"] == 36 and manifest["skipped"] == []
    assert manifest["n_flagged"] == sum(r["outlier"] == "1" for r in second)
    assert {f["path"] for f in manifest["files"]} == {"scores.csv"} | {r["heatmap"] for r in second if r["heatmap"]}
    # --json: the same manifest on stdout, nothing else
    result = CliRunner().invoke(cli, ["detect", str(folders / "mixed"), "-o", str(tmp_path / "run-j"), "--model",
                                      str(fitted_run / "detector.synthaug-detector"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((tmp_path / "run-j" / "manifest.json").read_text())
    # an unreadable file is skipped, listed in the manifest, and the exit code says so
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for p in sorted((folders / "mixed").glob("zero_*.png"))[:5]:
        (damaged / p.name).write_bytes(p.read_bytes())
    (damaged / "broken.png").write_bytes(b"not a png")
    result = CliRunner().invoke(cli, ["detect", str(damaged), "-o", str(tmp_path / "run-d"), "--model",
                                      str(fitted_run / "detector.synthaug-detector"), "-q"])
    assert result.exit_code == 1 and "broken.png" in result.stderr
    manifest = json.loads((tmp_path / "run-d" / "manifest.json").read_text())
    assert manifest["n_samples"] == 5 and [s["path"] for s in manifest["skipped"]] == [str(damaged / "broken.png")]
    result = CliRunner().invoke(cli, ["detect", str(folders / "mixed"), "-o", str(tmp_path / "x"), "--model",
                                      str(fitted_run / "detector.synthaug-detector"), "--score", "topk"])
    assert result.exit_code == 2 and "--score only apply when fitting" in result.output


def test_detect_refuses_to_clobber_or_to_write_into_the_input(folders, fitted_run):
    runner = CliRunner()
    args = ["detect", str(folders / "mixed"), "--model", str(fitted_run / "detector.synthaug-detector"), "-o"]
    result = runner.invoke(cli, args + [str(fitted_run)])
    assert result.exit_code == 2 and "not empty" in result.output and "--overwrite" in result.output
    for inside in (folders / "mixed", folders / "mixed" / "results"):
        result = runner.invoke(cli, args + [str(inside), "--overwrite"])
        assert result.exit_code == 2 and "overlaps" in result.output
    assert not (folders / "mixed" / "results").exists()


def test_detect_bad_options(folders, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["detect", str(folders / "mixed"), "-o", str(tmp_path / "o"),
                                 "--contamination", "0.9"])
    assert result.exit_code == 2 and "(0, 0.5]" in result.output
    np.save(tmp_path / "flat.npy", np.zeros((10, 64)))
    result = runner.invoke(cli, ["detect", str(folders / "mixed"), "-o", str(tmp_path / "o"), "--train",
                                 str(tmp_path / "flat.npy"), "--epochs", "1", "-q"])
    assert result.exit_code == 1 and "--train holds samples of shape (64,) and DIR of shape (8, 8)" in result.output
    assert not (tmp_path / "o").exists()  # refused before fitting
    result = runner.invoke(cli, ["detect", str(tmp_path / "flat.npy"), "-o", str(tmp_path / "p"),
                                 "--score", "ssim", "-q"])
    assert result.exit_code == 1 and "needs images" in result.output


def test_overwrite_removes_only_the_earlier_runs_heat_maps(folders, fitted_run, tmp_path):
    out = tmp_path / "run-3"
    detector = str(fitted_run / "detector.synthaug-detector")
    first = CliRunner().invoke(cli, ["detect", str(folders / "mixed"), "-o", str(out), "--model", detector, "-q"])
    assert first.exit_code == 0, first.output
    old_maps = {r["heatmap"] for r in read_csv(out / "scores.csv") if r["heatmap"]}
    assert old_maps
    (out / "maps" / "mine.txt").write_text("a file detect did not write")
    # the second run scores only the zeros: fewer flags, so some earlier maps would go stale
    zeros_only = tmp_path / "zeros"
    zeros_only.mkdir()
    for p in sorted((folders / "mixed").glob("zero_*.png"))[:10]:
        (zeros_only / p.name).write_bytes(p.read_bytes())
    second = CliRunner().invoke(cli, ["detect", str(zeros_only), "-o", str(out), "--model", detector, "-q",
                                      "--overwrite"])
    assert second.exit_code == 0, second.output
    listed = {r["heatmap"] for r in read_csv(out / "scores.csv") if r["heatmap"]}
    on_disk = {p.relative_to(out).as_posix() for p in (out / "maps").glob("*.png")}
    assert on_disk == listed  # no heat map of the first run is left unlisted
    assert (out / "maps" / "mine.txt").exists()


def test_overwrite_keeps_a_detector_the_run_reuses_from_its_own_output(folders, fitted_run, tmp_path):
    import shutil

    out = tmp_path / "run-4"
    shutil.copytree(fitted_run, out)
    detector = out / "detector.synthaug-detector"
    result = CliRunner().invoke(cli, ["detect", str(folders / "mixed"), "-o", str(out), "--model", str(detector),
                                      "-q", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert detector.is_file()  # listed by the first run, not written by this one, but its input


def test_detect_names_images_in_nested_class_folders(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    for folder, label in (("a/sub", 0), ("b", 1)):
        (tmp_path / "nest" / folder).mkdir(parents=True)
        for i, img in enumerate(d.images[d.target == label][:6]):
            Image.fromarray((img * 15).astype(np.uint8)).save(tmp_path / "nest" / folder / f"{i}.png")
    result = CliRunner().invoke(cli, ["detect", str(tmp_path / "nest"), "-o", str(tmp_path / "out"), "--epochs",
                                      "1", "-q"])
    assert result.exit_code == 0, result.output
    names = [r["file"] for r in read_csv(tmp_path / "out" / "scores.csv")]
    assert names == [f"a/sub/{i}.png" for i in range(6)] + [f"b/{i}.png" for i in range(6)]


def test_detect_resizes_mixed_sizes_as_its_error_advises(folders, fitted_run, tmp_path):
    mixed = tmp_path / "mixed-sizes"
    d = load_digits()
    write_pngs(mixed, d.images[d.target == 0][130:134], "zero")
    Image.fromarray((np.kron(d.images[1], np.ones((2, 2))) * 15).astype(np.uint8)).save(mixed / "big.png")
    refused = CliRunner().invoke(cli, ["detect", str(mixed), "-o", str(tmp_path / "a"), "--model",
                                       str(fitted_run / "detector.synthaug-detector")])
    assert refused.exit_code == 1 and "--resize HxW" in refused.output
    resized = CliRunner().invoke(cli, ["detect", str(mixed), "-o", str(tmp_path / "b"), "--model",
                                       str(fitted_run / "detector.synthaug-detector"), "--resize", "8x8", "-q"])
    assert resized.exit_code == 0, resized.output
    assert len(read_csv(tmp_path / "b" / "scores.csv")) == 5


def test_a_sample_scored_nan_is_flagged_and_mapped_first(folders, fitted_run, tmp_path, monkeypatch):
    from synthaug.integrations.anomaly import ReconstructionAnomalyDetector

    scored = ReconstructionAnomalyDetector.score_samples

    def one_nan(self, X):  # as if the generator could not score the third image
        scores = scored(self, X)
        scores[2] = np.nan
        return scores

    monkeypatch.setattr(ReconstructionAnomalyDetector, "score_samples", one_nan)
    out = tmp_path / "nan"
    result = CliRunner().invoke(cli, ["detect", str(folders / "mixed"), "-o", str(out), "--model",
                                      str(fitted_run / "detector.synthaug-detector"), "--max-maps", "1", "-q"])
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "scores.csv")
    assert rows[2]["outlier"] == "1" and rows[2]["heatmap"] != ""
    assert sum(r["heatmap"] != "" for r in rows) == 1
