"""synthaug.integrations.medical on the DICOM files shipped with pydicom and nibabel's NIfTI volumes."""
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

from nibabel.testing import data_path as NIBABEL_DATA
from pydicom.data import get_testdata_file
from synthaug.integrations import medical
from synthaug.integrations.medical import (
    WINDOW_PRESETS,
    CTWindow,
    DicomDecodeError,
    MedicalAugmenter,
    PercentileNormalizer,
    extract_patches,
    read_dicom,
    read_dicom_series,
    read_nifti,
    reassemble_patches,
    write_dicom,
    write_nifti,
)

from synthaug.provenance import record_from_dicom_text, verify, verify_record

CT_SMALL = get_testdata_file("CT_small.dcm")
MR_SMALL = get_testdata_file("MR_small.dcm")


def strict_read(path):
    """Read a DICOM file and decode its pixels with every pydicom warning raised as an error."""
    settings = pydicom.config.settings
    old = settings.reading_validation_mode
    settings.reading_validation_mode = pydicom.config.RAISE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array
    finally:
        settings.reading_validation_mode = old
    return ds, pixels


@pytest.fixture(scope="module")
def ct():
    return read_dicom(CT_SMALL)


# -- reading -----------------------------------------------------------------------------------------
def test_read_ct_gives_hounsfield_units_and_metadata(ct):
    raw = pydicom.dcmread(CT_SMALL)
    assert ct.array.shape == (1, 128, 128) and ct.array.dtype == np.int16
    assert ct.units == "HU" and ct.modality == "CT"
    # RescaleSlope 1, RescaleIntercept -1024: HU = stored - 1024, exactly
    np.testing.assert_array_equal(ct.array[0], raw.pixel_array.astype(np.int32) - 1024)
    assert ct.metadata["series_instance_uid"] == raw.SeriesInstanceUID
    assert ct.metadata["pixel_spacing"] == pytest.approx([0.661468, 0.661468])
    assert ct.spacing[1:] == pytest.approx((0.661468, 0.661468))
    assert ct.metadata["transfer_syntax_uid"] == "1.2.840.10008.1.2.1"
    assert "PixelData" not in ct.headers[0] and ct.headers[0].PatientID == raw.PatientID


def test_read_decodes_compressed_transfer_syntaxes_available_here():
    mr = read_dicom(MR_SMALL)
    assert mr.units == "stored value" and mr.array.dtype == np.int16
    for name in ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"):  # lossless: the same pixels
        np.testing.assert_array_equal(read_dicom(get_testdata_file(name)).array, mr.array)
    big = read_dicom(get_testdata_file("693_J2KI.dcm"))  # 512×512 CT, JPEG 2000
    assert big.array.shape == (1, 512, 512) and big.units == "HU" and big.array.dtype == np.int16


def test_undecodable_or_broken_files_give_clear_errors(tmp_path):
    from pydicom.pixels import get_decoder

    jpeg_ls = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    if get_decoder(pydicom.dcmread(jpeg_ls, stop_before_pixels=True).file_meta.TransferSyntaxUID).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    with pytest.raises(DicomDecodeError, match=r"JPEG-LS Lossless.*Install a decoder"):
        read_dicom(jpeg_ls)
    with pytest.raises(DicomDecodeError, match="truncated or corrupt"):
        read_dicom(get_testdata_file("MR_truncated.dcm"))
    with pytest.raises(ValueError, match="without pixel data"):
        read_dicom(get_testdata_file("rtplan.dcm"))
    (tmp_path / "notes.txt").write_text("not dicom")
    with pytest.raises(ValueError, match="not a readable DICOM file"):
        read_dicom(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="no DICOM image files"):
        read_dicom(tmp_path)


def test_read_folder_groups_series_and_sorts_slices_by_position(tmp_path):
    # nibabel ships a two-slice MR series; copy it with file names in the opposite order.
    shutil.copy(Path(NIBABEL_DATA) / "1.dcm", tmp_path / "a.dcm")
    shutil.copy(Path(NIBABEL_DATA) / "0.dcm", tmp_path / "b.dcm")
    (tmp_path / "sub").mkdir()
    shutil.copy(CT_SMALL, tmp_path / "sub" / "ct.dcm")
    shutil.copy(get_testdata_file("rtplan.dcm"), tmp_path / "plan.dcm")
    (tmp_path / "README").write_text("not dicom")
    mr_uid = pydicom.dcmread(tmp_path / "a.dcm").SeriesInstanceUID
    with pytest.raises(ValueError, match="holds 2 DICOM series"):
        read_dicom(tmp_path)
    mr = read_dicom(tmp_path, series_uid=mr_uid)
    assert mr.array.shape == (2, 256, 256)
    assert np.diff(mr.metadata["slice_positions"]) == pytest.approx([3.0], abs=1e-4)  # along the slice normal
    assert [Path(f).name for f in mr.metadata["files"]] == ["b.dcm", "a.dcm"]
    assert mr.spacing[0] == pytest.approx(3.0, abs=1e-4)
    np.testing.assert_array_equal(mr.array[0], pydicom.dcmread(tmp_path / "b.dcm").pixel_array)
    reasons = dict(mr.skipped)
    assert reasons[str(tmp_path / "README")] == "not a DICOM file"
    assert "without pixel data" in reasons[str(tmp_path / "plan.dcm")]
    assert reasons[str(tmp_path / "sub" / "ct.dcm")].startswith("other series")
    series = read_dicom_series(tmp_path)
    assert [s.modality for s in series] == ["MR", "CT"]


# -- intensities and patches -------------------------------------------------------------------------
def test_windows_and_percentiles_round_trip_integer_hu_exactly(ct):
    every_int16 = np.arange(-32768, 32768, dtype=np.int16).reshape(-1, 256)
    for preset in WINDOW_PRESETS:
        for outside in ("compress", "linear"):
            for hu in (ct.array, every_int16):
                window = CTWindow(preset, outside=outside).fit(hu)
                back = window.inverse_transform(window.transform(hu))
                assert back.dtype == np.int16
                np.testing.assert_array_equal(back, hu)
    lung = CTWindow("lung").fit(ct.array)
    units = lung.transform(np.array([[-1350, -600, 150]], dtype=np.int16))
    np.testing.assert_allclose(units, [[0.0, 0.5, 1.0]], atol=1e-6)  # window edges at 0 and 1
    clip = CTWindow(center=40, width=400, preset=None, outside="clip").fit(ct.array)
    back = clip.inverse_transform(clip.transform(ct.array))
    inside = (ct.array >= -160) & (ct.array <= 240)
    np.testing.assert_array_equal(back[inside], ct.array[inside])
    assert back.min() == -160 and back.max() == 240
    mr = read_dicom(MR_SMALL).array
    norm = PercentileNormalizer(1, 99).fit(mr)
    units = norm.transform(mr)
    assert np.mean(units < 0) == pytest.approx(0.01, abs=0.005) and np.mean(units > 1) == pytest.approx(0.01, abs=0.005)
    np.testing.assert_array_equal(norm.inverse_transform(units), mr)
    with pytest.raises(ValueError, match="preset must be one of"):
        CTWindow("liver").fit(ct.array)


def test_patches_cover_every_pixel_and_reassemble_exactly(ct):
    patches, positions = extract_patches(ct.array, 32, stride=16)
    assert patches.shape == (49, 32, 32) and patches.dtype == np.int16
    np.testing.assert_array_equal(patches[8], ct.array[0, 16:48, 16:48])  # row 1, column 1 of the 7×7 grid
    np.testing.assert_array_equal(reassemble_patches(patches, positions, (128, 128)), ct.array)
    odd, odd_positions = extract_patches(ct.array[0], 48, stride=40)  # 128 = 40 + 40 + 48: last patch flush
    assert sorted(set(odd_positions[:, 1])) == [0, 40, 80]
    np.testing.assert_array_equal(reassemble_patches(odd, odd_positions, (128, 128))[0], ct.array[0])
    with pytest.raises(ValueError, match="uncovered"):
        reassemble_patches(patches[:10], positions[:10], (128, 128))
    with pytest.raises(ValueError, match="larger than the images"):
        extract_patches(ct.array, 256)


# -- writing ------------------------------------------------------------------------------------------
def test_write_dicom_is_valid_new_and_deidentified(ct, tmp_path):
    template = pydicom.dcmread(CT_SMALL)
    hu = np.stack([ct.array[0], ct.array[0][::-1], ct.array[0][:, ::-1]])
    paths = write_dicom(hu, ct, tmp_path / "out")
    assert [p.name for p in paths] == ["synthetic_0001.dcm", "synthetic_0002.dcm", "synthetic_0003.dcm"]
    original_uids = {template.SOPInstanceUID, template.SeriesInstanceUID, template.StudyInstanceUID,
                     template.FrameOfReferenceUID}
    sop_uids, study_uids, series_uids = set(), set(), set()
    for path, expected in zip(paths, hu):
        ds, pixels = strict_read(path)  # no warning of any kind, strict value validation
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPClassUID == template.SOPClassUID
        new = {ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID}
        assert len(new) == 4 and not new & original_uids
        sop_uids.add(ds.SOPInstanceUID)
        study_uids.add(ds.StudyInstanceUID)
        series_uids.add(ds.SeriesInstanceUID)
        assert str(ds.PatientName) == "SYNTHETIC" and ds.PatientID not in (template.PatientID, "ABCD1234", "1234ABCD")
        assert str(template.PatientName) not in str(ds) and "JFK IMAGING" not in str(ds)
        for gone in ("OtherPatientIDsSequence", "InstitutionName", "StationName", "AcquisitionDate", "PatientAge"):
            assert gone not in ds
        assert ds.PatientBirthDate == "" and ds.PatientIdentityRemoved == "YES"
        assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert "SYNTHETIC" in ds.SeriesDescription
        assert [elem.tag.element for elem in ds if elem.tag.group == 0x0011] == [0x0010, 0x1010]  # only synthaug's
        for keyword in ("BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "RescaleSlope",
                        "RescaleIntercept", "PixelSpacing", "ImageOrientationPatient"):
            assert ds[keyword].value == template[keyword].value
        assert pixels.dtype == template.pixel_array.dtype
        np.testing.assert_array_equal(pixels.astype(np.int32) - 1024, expected)  # stored = HU - intercept
    assert len(sop_uids) == 3 and len(study_uids) == 1 and len(series_uids) == 1
    back = read_dicom(tmp_path / "out")  # one series, stacked along the slice normal in file order
    np.testing.assert_array_equal(back.array, hu)
    assert back.metadata["series_instance_uid"] == series_uids.pop()


def test_write_dicom_carries_a_verifiable_provenance_record(ct, tmp_path):
    paths = write_dicom(ct.array, ct, tmp_path, key="test-key")
    ds = pydicom.dcmread(paths[0])
    assert "SYNTHETIC" in ds.DerivationDescription and ds[0x0011, 0x0010].value == "synthaug"
    record = record_from_dicom_text(ds[0x0011, 0x1010].value)
    assert verify_record(record, "test-key") == "valid"
    assert record["output"]["name"] == "synthetic_0001.dcm"
    result = verify(tmp_path, key="test-key")[0]
    assert result.synthetic and result.record_status == "valid"
    ds.PixelData = (ds.pixel_array + 1).tobytes()  # an edited image no longer matches its record
    ds.save_as(tmp_path / "edited.dcm")
    assert verify(tmp_path / "edited.dcm", key="test-key")[0].record_status == "image-modified"


def test_write_dicom_checks_its_input(ct, tmp_path):
    with pytest.warns(UserWarning, match="1 pixel values lie outside"):
        write_dicom(np.array([[[40000, 0], [0, 0]]]), ct, tmp_path / "a")  # int16 storage ends at 32767 - 1024
    assert pydicom.dcmread(tmp_path / "a" / "synthetic_0001.dcm").pixel_array.max() == 32767
    with pytest.raises(FileExistsError, match="not empty"):
        write_dicom(ct.array, ct, tmp_path / "a")
    with pytest.raises(ValueError, match="not supported"):
        write_dicom(ct.array, get_testdata_file("examples_rgb_color.dcm"), tmp_path / "b")
    with pytest.raises(ValueError, match="NaN"):
        write_dicom(np.full((1, 4, 4), np.nan), ct, tmp_path / "c")


@pytest.mark.parametrize("name", ["anatomical.nii", "example4d.nii.gz"])
def test_nifti_read_write_keeps_values_and_affine(name, tmp_path):
    source = Path(NIBABEL_DATA) / name
    image = read_nifti(source)
    original = nib.load(str(source))
    assert image.array.shape == original.shape and image.array.dtype == np.int16
    np.testing.assert_array_equal(image.array, np.asarray(original.dataobj))
    slices = image.slices()
    assert slices.shape == ((25, 33, 41) if name == "anatomical.nii" else (48, 128, 96))
    np.testing.assert_array_equal(image.from_slices(slices), image.array)
    out = write_nifti(image.array, image, tmp_path / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = nib.load(str(out))
        values = np.asarray(back.dataobj)
    np.testing.assert_array_equal(values, image.array)
    np.testing.assert_array_equal(back.affine, original.affine)
    assert back.header.get_zooms() == original.header.get_zooms()
    assert b"SYNTHETIC" in back.header["descrip"].item()
    record = medical.read_nifti_record(out)
    assert record["output"]["name"] == name and verify_record(record) == "valid"
    with pytest.raises(FileExistsError):
        write_nifti(image.array, image, out)


def test_missing_pydicom_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(ImportError, match=r"synthaug\[medical\]"):
        read_dicom(CT_SMALL)


# -- the augmenter --------------------------------------------------------------------------------------
def test_augmenter_trains_a_tiny_generator_on_ct_patches(ct, tmp_path, eager_tensorflow):
    from synthaug import VAE

    vae = VAE(hidden_units=(32,), latent_dim=4, conv_filters=(8,), epochs=8, validation_fraction=0.0,
              learning_rate=1e-2, decoder_output="mean")
    augmenter = MedicalAugmenter(vae, patch_size=32, stride=16, random_state=0).fit(CT_SMALL)
    assert augmenter.n_training_samples_ == 49 and augmenter.sample_shape_ == (32, 32)
    assert isinstance(augmenter.intensity_, CTWindow) and augmenter.intensity_.preset == "soft_tissue"
    losses = augmenter.generator_.history_["loss"]
    assert losses[-1] < losses[0]
    hu = augmenter.generate(16, random_state=0)
    assert hu.shape == (16, 32, 32) and hu.dtype == np.int16
    assert ct.array.min() <= hu.min() and hu.max() <= ct.array.max()
    # the patches' mean HU is learnt: closer to the real mean than the window centre's 40 HU
    assert abs(hu.mean() - ct.array.mean()) < abs(40 - ct.array.mean())
    np.testing.assert_array_equal(augmenter.generate(16, random_state=0), hu)
    paths = augmenter.write(hu, tmp_path / "dicom", seed=0)
    assert len(paths) == 16
    np.testing.assert_array_equal(read_dicom(tmp_path / "dicom").array, hu)  # HU come back exactly
    results = verify(tmp_path / "dicom")
    assert all(r.synthetic and r.record_status == "valid" for r in results)
    record = results[0].record
    assert record["generator"]["class"] == "VAE" and record["seed"] == 0
    # a prefit generator is used as it is
    again = MedicalAugmenter(augmenter.generator_, prefit=True, random_state=0).fit(ct)
    assert again.generator_ is augmenter.generator_
    np.testing.assert_array_equal(again.generate(16, random_state=0), hu)
    with pytest.raises(ValueError, match="prefit generator makes samples of shape"):
        MedicalAugmenter(augmenter.generator_, patch_size=16, prefit=True).fit(ct)


def test_scaled_nifti_comes_back_as_float32_in_scaled_units():
    source = Path(NIBABEL_DATA) / "functional.nii"  # scl_slope 0.0754, scl_inter 3100.8
    image = read_nifti(source)
    assert image.array.dtype == np.float32
    np.testing.assert_allclose(image.array, nib.load(str(source)).get_fdata(), rtol=1e-6)


def test_a_stride_beyond_the_patch_size_is_refused():
    with pytest.raises(ValueError, match=r"stride \(10, 10\) is larger than patch_size \(4, 4\)"):
        extract_patches(np.zeros((2, 16, 16)), 4, stride=10)


def test_a_copied_slice_is_skipped_not_stacked_twice(tmp_path):
    shutil.copy(Path(NIBABEL_DATA) / "0.dcm", tmp_path / "a.dcm")
    shutil.copy(Path(NIBABEL_DATA) / "1.dcm", tmp_path / "b.dcm")
    shutil.copy(Path(NIBABEL_DATA) / "1.dcm", tmp_path / "b copy.dcm")
    image = read_dicom(tmp_path)
    assert image.array.shape[0] == 2
    assert image.skipped == [(str(tmp_path / "b.dcm"), "duplicate of b copy.dcm (same SOPInstanceUID)")]


def test_colour_nifti_is_refused_by_name(tmp_path):
    rgb = np.zeros((4, 4, 2), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), tmp_path / "rgb.nii")
    with pytest.raises(ValueError, match="rgb.nii holds colour voxels"):
        read_nifti(tmp_path / "rgb.nii")


def test_a_volume_with_nan_is_refused_naming_its_file(tmp_path):
    volume = np.ones((8, 8, 3), np.float32)
    volume[2, 2, 1] = np.nan
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "holes.nii")
    with pytest.raises(ValueError, match=r"holes.nii contains 1 NaN or infinite values"):
        MedicalAugmenter(patch_size=None).fit(tmp_path / "holes.nii")


def _ct_series(folder, z_positions):
    """CT_small copied as one series with a slice at each z (new instance UIDs, same series)."""
    for i, z in enumerate(z_positions):
        ds = pydicom.dcmread(CT_SMALL)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.ImagePositionPatient = [0.0, 0.0, float(z)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.InstanceNumber = i + 1
        ds.save_as(folder / f"slice{i}.dcm")


def test_uneven_slice_gaps_are_warned_about_naming_the_files(tmp_path):
    _ct_series(tmp_path, [0, 5, 10, 20, 25])  # the slice at 15 is missing
    with pytest.warns(UserWarning, match=r"not evenly spaced .*a gap of 10 mm between slice2.dcm and slice3.dcm"):
        image = read_dicom(tmp_path)
    assert image.spacing[0] == 5.0 and image.metadata["slice_positions"] == [0, 5, 10, 20, 25]
    even = tmp_path / "even"
    even.mkdir()
    _ct_series(even, [0, 5, 10, 15])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_dicom(even).spacing[0] == 5.0


def test_rt_dose_is_read_in_dose_units_with_its_frame_spacing():
    image = read_dicom(get_testdata_file("rtdose.dcm"))  # 15 frames, DoseGridScaling 1e-6, RELATIVE
    stored = pydicom.dcmread(get_testdata_file("rtdose.dcm")).pixel_array
    assert image.array.dtype == np.float32 and image.units == "relative dose"
    np.testing.assert_allclose(image.array, stored * 1e-6, rtol=1e-6)
    assert image.spacing == (5.0, 10.0, 10.0)


def test_palette_colour_is_read_as_rgb_not_as_indices():
    ds = pydicom.dcmread(get_testdata_file("examples_palette.dcm"))
    image = read_dicom(get_testdata_file("examples_palette.dcm"))
    assert image.array.shape == (1, *ds.pixel_array.shape, 3) and image.units == "RGB (palette applied)"
    np.testing.assert_array_equal(image.array[0], pydicom.pixels.apply_color_lut(ds.pixel_array, ds))
    with pytest.raises(ValueError, match="colour images are not supported"):
        MedicalAugmenter(patch_size=None).fit(image)


def test_written_dicom_records_can_carry_an_ed25519_signature(ct, tmp_path):
    ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    from cryptography.hazmat.primitives import serialization

    private = ed25519.Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    paths = write_dicom(ct.array[:1], ct, tmp_path / "out", ed25519_private_key=private)
    assert [r.record_status for r in verify(paths, ed25519_public_key=public)] == ["valid"]
    other = write_dicom(ct.array[:1], ct, tmp_path / "unsigned")
    assert [r.record_status for r in verify(other, ed25519_public_key=public)] == ["invalid-signature"]


def test_a_series_mixing_planes_or_pixel_spacings_is_refused(tmp_path):
    def series(folder, slices):
        folder.mkdir()
        uid = pydicom.uid.generate_uid()
        for i, (orientation, position, spacing) in enumerate(slices):
            ds = pydicom.dcmread(CT_SMALL)
            ds.SeriesInstanceUID = uid
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
            ds.ImageOrientationPatient, ds.ImagePositionPatient, ds.PixelSpacing = orientation, position, spacing
            ds.save_as(folder / f"s{i}.dcm")
        return folder

    axial, coronal, fine = [1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, -1], [0.66, 0.66]
    planes = series(tmp_path / "planes", [(axial, [0, 0, 0], fine), (axial, [0, 0, 5], fine),
                                          (coronal, [0, 10, 0], fine), (coronal, [0, 15, 0], fine)])
    with pytest.raises(ValueError, match=r"mixes slice orientations: s\d.dcm has ImageOrientationPatient "
                                         r"\[1.0, 0.0, 0.0, 0.0, [01].0, [-0.]+\] but s\d.dcm has"):
        read_dicom(planes)
    spacings = series(tmp_path / "spacings", [(axial, [0, 0, z], fine if z < 10 else [1.5, 1.5])
                                              for z in (0, 5, 10, 15)])
    with pytest.raises(ValueError, match=r"mixes slice pixel spacings: s0.dcm has PixelSpacing \[0.66, 0.66\] "
                                         r"but s2.dcm has \[1.5, 1.5\]"):
        read_dicom(spacings)
    # a study folder holding a scan beside such a localizer: the scan is read, the localizer left out
    _ct_series(planes, [20, 25, 30])
    with pytest.warns(UserWarning, match="mixes slice orientations.*left out of read_dicom_series"):
        (scan,) = read_dicom_series(planes)
    assert scan.array.shape[0] == 3 and scan.spacing[0] == 5.0
    localizer = str(pydicom.dcmread(planes / "s0.dcm").SeriesInstanceUID)
    with pytest.raises(ValueError, match="mixes slice orientations"):
        read_dicom(planes, series_uid=localizer)  # asked for by name: refused
    with pytest.raises(ValueError, match="mixes slice pixel spacings"):
        read_dicom_series(spacings)  # no series left


def test_rt_dose_frames_with_decreasing_offsets_come_back_ascending(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    stored = ds.pixel_array
    ds.GridFrameOffsetVector = [-5.0 * i for i in range(15)]  # legal: frames stored from the top down
    ds.save_as(tmp_path / "down.dcm")
    image = read_dicom(tmp_path / "down.dcm")
    assert image.spacing == (5.0, 10.0, 10.0)
    positions = image.metadata["slice_positions"]
    assert np.all(np.diff(positions) == 5.0)
    np.testing.assert_allclose(image.array, stored[::-1] * 1e-6, rtol=1e-6)  # last stored frame first


def test_ct_windows_need_hounsfield_units_and_auto_falls_back(tmp_path):
    ds = pydicom.dcmread(CT_SMALL)
    ds.RescaleType = "US"  # unspecified units: not HU
    ds.save_as(tmp_path / "us.dcm")
    image = read_dicom(tmp_path / "us.dcm")
    assert image.modality == "CT" and image.units != "HU"
    assert isinstance(MedicalAugmenter(intensity="auto")._intensity(image), PercentileNormalizer)
    assert isinstance(MedicalAugmenter(intensity="auto")._intensity(read_dicom(CT_SMALL)), CTWindow)
    for window in ("lung", CTWindow("lung")):
        with pytest.raises(ValueError, match="is a CT window in Hounsfield units, but this MR series"):
            MedicalAugmenter(intensity=window, patch_size=16).fit(MR_SMALL)


def test_an_analyze_pair_is_named_as_such(tmp_path):
    nib.save(nib.Nifti1Pair(np.zeros((16, 16, 2), dtype=np.int16), np.eye(4)), tmp_path / "vol.hdr")
    for name in ("vol.hdr", "vol.img"):
        with pytest.raises(ValueError, match=rf"{name} looks like an Analyze or NIfTI pair \(.hdr/.img\)"):
            MedicalAugmenter(patch_size=16).fit(tmp_path / name)
