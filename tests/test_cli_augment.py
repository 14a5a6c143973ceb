"""``synthaug augment``: image folders, DICOM series and NIfTI volumes in, real + synthetic out."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from synthaug.cli import cli

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")
from nibabel.testing import data_path as NIBABEL_DATA
from pydicom.data import get_testdata_file

pytestmark = pytest.mark.usefixtures("eager_tensorflow")  # tiny fits: tracing would cost more than training


def run(*args):
    return CliRunner().invoke(cli, ["augment", *map(str, args)])


@pytest.fixture
def ct_dir(tmp_path):
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "slice.dcm")
    return folder


@pytest.fixture
def image_dir(tmp_path):
    """Two classes of 8×8 digits as PNG files in class sub-folders."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = tmp_path / "images"
    for label in (0, 1):
        (folder / f"class{label}").mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == label][:12]):
            Image.fromarray((image * 15).astype(np.uint8)).save(folder / f"class{label}" / f"{i}.png")
    return folder


def test_help_has_an_example():
    result = CliRunner().invoke(cli, ["augment", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "synthaug augment ct-series/ -o synthetic-ct/ --format dicom" in result.output


def test_dicom_folder_gives_a_new_synthetic_series(ct_dir, tmp_path):
    out = tmp_path / "out"
    result = run(ct_dir, "-o", out, "--epochs", 1, "-n", 5, "--seed", 3, "-q")
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.iterdir())
    assert files == ["manifest.json"] + [f"synthetic_000{i}.dcm" for i in range(1, 6)]
    assert sorted(p.name for p in ct_dir.iterdir()) == ["slice.dcm"]  # nothing written into the input
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input_kind"] == "dicom" and manifest["format"] == "dicom" and manifest["model"] == "vae"
    assert manifest["n_training_samples"] == 49 and manifest["n_synthetic"] == 5 and manifest["units"] == "HU"
    assert [f["path"] for f in manifest["files"]] == files[1:]
    original = pydicom.dcmread(ct_dir / "slice.dcm")
    uids = set()
    for name in files[1:]:
        ds = pydicom.dcmread(out / name)
        assert ds.SeriesInstanceUID != original.SeriesInstanceUID and str(ds.PatientName) == "SYNTHETIC"
        assert "SYNTHETIC" in ds.SeriesDescription and (ds.Rows, ds.Columns) == (32, 32)
        uids.add(ds.SOPInstanceUID)
    assert len(uids) == 5
    verified = CliRunner().invoke(cli, ["verify", str(out)])
    assert verified.exit_code == 3 and verified.output.count(" valid") == 5


def test_nifti_volume_gives_synthetic_nifti_with_its_affine(tmp_path):
    source = Path(NIBABEL_DATA) / "anatomical.nii"
    out = tmp_path / "out"
    result = run(source, "-o", out, "--epochs", 1, "--patch-size", 16, "--ratio", 0.25, "-q")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input_kind"] == "nifti" and manifest["window"] == "auto"
    img = nib.load(str(out / "synthetic.nii.gz"))
    assert img.shape == (16, 16, manifest["n_synthetic"])
    assert manifest["n_synthetic"] == round(0.25 * manifest["n_training_samples"])
    np.testing.assert_array_equal(img.affine, nib.load(str(source)).affine)
    assert np.asarray(img.dataobj).dtype.name == "int16"  # the input's dtype (big-endian as its header)


@pytest.mark.parametrize("model", ["gan", "pose"])
def test_image_folder_gives_real_and_synthetic_in_class_folders(image_dir, tmp_path, model):
    from synthaug.io import read_data

    out = tmp_path / "out"
    result = run(image_dir, "-o", out, "--epochs", 1, "--ratio", 0.5, "--model", model, "-q")
    assert result.exit_code == 0, result.output
    for label in ("class0", "class1"):
        names = sorted(p.name for p in (out / label).iterdir())
        assert sum(n.startswith("real_") for n in names) == 12
    augmented = read_data(out)  # readable as one labelled training set
    assert len(augmented.X) == 24 + 12 and augmented.class_names == ["class0", "class1"]
    manifest = json.loads((out / "manifest.json").read_text())
    kinds = [f["kind"] for f in manifest["files"]]
    assert kinds.count("real") == 24 and kinds.count("synthetic") == 12 and "provenance" in kinds
    assert (out / "provenance.json").is_file()
    # each real copy names the input file it is, and holds that file's pixels
    real = [f for f in manifest["files"] if f["kind"] == "real"]
    assert all(set(f) == {"path", "kind", "source"} for f in real)
    assert all("source" not in f for f in manifest["files"] if f["kind"] != "real")
    for f in real[:3] + real[-3:]:
        assert f["source"].split("/")[0] == f["path"].split("/")[0]  # same class folder
        np.testing.assert_array_equal(np.asarray(Image.open(out / f["path"])),
                                      np.asarray(Image.open(image_dir / f["source"])))


def test_npz_input_writes_arrays(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "digits.npz", X=digits.images[:40], y=digits.target[:40])
    out = tmp_path / "out"
    result = run(tmp_path / "digits.npz", "-o", out, "--epochs", 1, "-n", 7, "--model", "flow", "-q")
    assert result.exit_code == 0, result.output
    with np.load(out / "synthetic.npz") as npz:
        assert npz["X"].shape == (7, 8, 8) and npz["y"].shape == (7,)
    with np.load(out / "real.npz") as npz:
        np.testing.assert_array_equal(npz["X"], digits.images[:40])


@pytest.mark.parametrize("where", ["same", "inside"])
def test_refuses_to_write_into_the_input(ct_dir, where):
    out = ct_dir if where == "same" else ct_dir / "synthetic"
    result = run(ct_dir, "-o", out, "--epochs", 1)
    assert result.exit_code == 2 and "overlaps" in result.output
    assert sorted(p.name for p in ct_dir.iterdir()) == ["slice.dcm"]


def test_usage_errors_exit_2(ct_dir, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    busy = run(ct_dir, "-o", tmp_path / "busy")
    assert busy.exit_code == 2 and "not empty" in busy.output
    both = run(ct_dir, "-o", tmp_path / "o1", "-n", 3, "--ratio", 1)
    assert both.exit_code == 2 and "not both" in both.output
    png = run(ct_dir, "-o", tmp_path / "o2", "--format", "png")
    assert png.exit_code == 2 and "dicom input can be written as dicom or npy" in png.output


def test_undecodable_dicom_fails_with_exit_1(tmp_path):
    from pydicom.pixels import get_decoder

    source = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    if get_decoder(pydicom.dcmread(source, stop_before_pixels=True).file_meta.TransferSyntaxUID).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    (tmp_path / "in").mkdir()
    shutil.copy(source, tmp_path / "in" / "mr.dcm")
    result = run(tmp_path / "in", "-o", tmp_path / "out", "--epochs", 1)
    assert result.exit_code == 1 and "JPEG-LS" in result.output and "Traceback" not in result.output


def test_dicom_folders_skipped_files_several_series_and_windows_for_ct_only(tmp_path):
    from nibabel.testing import data_path

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    shutil.copy(Path(data_path) / "0.dcm", folder / "mr0.dcm")
    shutil.copy(Path(data_path) / "1.dcm", folder / "mr1.dcm")
    (folder / "notes.dcm").write_text("not a DICOM file")
    several = run(folder, "-o", tmp_path / "a", "--epochs", 1, "-q")
    assert several.exit_code == 1 and "holds 2 DICOM series" in several.output and "--series-uid" in several.output
    ct_uid = pydicom.dcmread(folder / "ct.dcm").SeriesInstanceUID
    chosen = run(folder, "-o", tmp_path / "b", "--series-uid", ct_uid, "--patch-size", 32, "--epochs", 1, "-n", 2,
                 "-q", "--json")
    # skipped files (the other series, notes.dcm) are on stderr and in the manifest, and exit 1 says so
    assert chosen.exit_code == 1, chosen.output
    manifest = json.loads(chosen.stdout)
    assert manifest["modality"] == "CT" and manifest["n_synthetic"] == 2
    assert {Path(s["path"]).name for s in manifest["skipped"]} == {"mr0.dcm", "mr1.dcm", "notes.dcm"}
    assert "notes.dcm" in chosen.stderr
    mr_uid = pydicom.dcmread(folder / "mr0.dcm").SeriesInstanceUID
    lung = run(folder, "-o", tmp_path / "c", "--series-uid", mr_uid, "--window", "lung", "--epochs", 1, "-q")
    assert lung.exit_code == 1 and "'lung' is a CT window in Hounsfield units, but this MR series" in lung.output
    assert not (tmp_path / "c").exists()
