"""Medical imaging: DICOM and NIfTI in and out, CT windows and MR normalisation, patches, and an
augmenter that trains a synthaug generator on them and writes a synthetic series.

- Readers: :func:`read_dicom` (a file, or a folder of series grouped by SeriesInstanceUID and
  sorted by position), :func:`read_dicom_series` (every series of a folder) and
  :func:`read_nifti` give a :class:`MedicalImage`: pixel data in physical units (Hounsfield units
  for CT, through RescaleSlope/RescaleIntercept) with the metadata kept.
- Intensities: :class:`CTWindow` (presets in :data:`WINDOW_PRESETS`) and
  :class:`PercentileNormalizer` (MR) are scikit-learn transformers whose ``inverse_transform``
  gives integer data back exactly, in its dtype.
- Patches: :func:`extract_patches` and :func:`reassemble_patches` (overlaps averaged).
- Writers: :func:`write_dicom` writes synthetic slices as a new DICOM series derived from a
  template (new UIDs, no patient identifiers, ``DERIVED\\SECONDARY``, a SYNTHETIC series
  description, the template's pixel representation, the signed provenance record in a private
  block); :func:`write_nifti` writes a volume with a reference image's affine.
- :class:`MedicalAugmenter`: read, fit a generator (``synthaug.VAE``, ``GAN``, ``Flow``, ...) on
  patches or slices in a window's units, generate in physical units, write a synthetic series.

pydicom and nibabel are the ``[medical]`` extra (``pip install synthaug[medical]``) and are
imported only inside the functions that need them; TensorFlow only when a generator is fitted.
Synthetic images are for research and for training models, not for diagnosis.
"""
from __future__ import annotations

import gzip
import json
import secrets
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted
from synthaug.integrations import _dicom_synthetic

__all__ = [
    "WINDOW_PRESETS",
    "CTWindow",
    "DicomDecodeError",
    "MedicalAugmenter",
    "MedicalImage",
    "PercentileNormalizer",
    "default_generator",
    "extract_patches",
    "is_dicom_file",
    "read_dicom",
    "read_dicom_series",
    "read_nifti",
    "read_nifti_record",
    "reassemble_patches",
    "write_dicom",
    "write_nifti",
]

_INSTALL = "pip install 'synthaug[medical]'"

# (center, width) in HU, as radiology references give them.
WINDOW_PRESETS = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "soft_tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}

class DicomDecodeError(ValueError):
    """A DICOM file's pixel data cannot be decoded here (e.g. no decoder for its compression)."""


# -- lazy imports ----------------------------------------------------------------------------------
def _pydicom():
    try:
        import pydicom
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"reading and writing DICOM needs pydicom: {_INSTALL}") from None
    return pydicom


def _nibabel():
    try:
        import nibabel
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"reading and writing NIfTI needs nibabel: {_INSTALL}") from None
    return nibabel


# -- the image container ---------------------------------------------------------------------------
@dataclass
class MedicalImage:
    """Pixel data in physical units and what was read with it.

    Attributes
    ----------
    array : ndarray
        DICOM: ``(n_slices, rows, columns)`` (``(..., 3)`` for colour), slices sorted by position,
        in physical units (HU for CT). NIfTI: the file's own axes ``(x, y, z[, t, ...])``, scaled
        by the header's ``scl_slope``/``scl_inter`` when it sets them.
    format : {"dicom", "nifti"}
    units : str
        ``"HU"`` for CT, the RescaleType where a DICOM file names one, else ``"stored value"``
        (DICOM) or ``"unknown"`` (NIfTI intensities have no unit field).
    modality : str or None
        DICOM Modality (``"CT"``, ``"MR"``, ...); ``None`` for NIfTI.
    spacing : tuple of float or None
        Millimetres per axis of ``array`` where known (DICOM: slice, row, column).
    affine : ndarray of shape (4, 4) or None
        NIfTI: voxel indices to RAS+ millimetres (nibabel's convention); ``None`` for DICOM.
    metadata : dict
        JSON-serialisable summary: UIDs, geometry, rescale, window, transfer syntax, files.
    headers : list
        DICOM: one pydicom ``Dataset`` per file, pixel data removed (templates for
        :func:`write_dicom`); NIfTI: ``[nibabel image header]``.
    path : Path
    skipped : list of (str, str)
        Files of a folder that were not read, and why (not DICOM, no pixel data, other series).
    """

    array: np.ndarray
    format: str
    units: str
    modality: str | None = None
    spacing: tuple | None = None
    affine: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)
    headers: list = field(default_factory=list)
    path: Path | None = None
    skipped: list = field(default_factory=list)

    def slices(self) -> np.ndarray:
        """2-D slices ``(n, H, W[, 3])``: DICOM slices as read; NIfTI axial slices (the third
        axis), over every later axis (time, ...) too. :meth:`from_slices` is the inverse."""
        if self.format == "dicom":
            return self.array
        a = self.array
        if a.ndim == 2:
            return a[None]
        moved = np.moveaxis(a, list(range(2, a.ndim)), list(range(a.ndim - 3, -1, -1)))
        return moved.reshape((-1,) + a.shape[:2])

    def from_slices(self, slices) -> np.ndarray:
        """Slices shaped as :meth:`slices` returns them, back in the layout of ``array``."""
        slices = np.asarray(slices)
        if self.format == "dicom" or self.array.ndim == 2:
            return slices.reshape(self.array.shape)
        a = self.array
        tail = a.shape[2:][::-1]
        moved = slices.reshape(tail + a.shape[:2])
        return np.moveaxis(moved, list(range(a.ndim - 3, -1, -1)), list(range(2, a.ndim)))


# -- DICOM reading ---------------------------------------------------------------------------------
def is_dicom_file(path) -> bool:
    """Whether ``path`` is a file with the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _physical(ds, stored: np.ndarray) -> tuple[np.ndarray, str]:
    """Stored values → physical units (Modality LUT / rescale, RT dose grid scaling, palette
    colour to RGB), integer dtypes kept where exact."""
    modality = str(ds.get("Modality", "") or "")
    if str(ds.get("PhotometricInterpretation", "") or "") == "PALETTE COLOR":
        # The stored values are indices into the palette, not intensities: averaging or
        # generating indices would mix unrelated colours.
        from pydicom.pixels import apply_color_lut

        return np.asarray(apply_color_lut(stored, ds)), "RGB (palette applied)"
    if modality == "RTDOSE" and ds.get("DoseGridScaling") not in (None, ""):
        units = {"GY": "Gy", "RELATIVE": "relative dose"}.get(str(ds.get("DoseUnits", "") or "").upper(), "dose")
        return (stored.astype(np.float64) * float(ds.DoseGridScaling)).astype(np.float32), units
    units = str(ds.get("RescaleType", "") or "").strip() or ("HU" if modality == "CT" else "stored value")
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels import apply_modality_lut

        return np.asarray(apply_modality_lut(stored, ds)), units
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    if slope == 1 and intercept == 0:
        return stored, units
    if slope.is_integer() and intercept.is_integer():
        values = stored.astype(np.int64) * int(slope) + int(intercept)
        for dtype in (np.int16, np.int32):
            info = np.iinfo(dtype)
            if values.size == 0 or (values.min() >= info.min and values.max() <= info.max):
                return values.astype(dtype), units
        return values, units
    return (stored.astype(np.float64) * slope + intercept).astype(np.float32), units


def _decode(ds, path) -> np.ndarray:
    """The stored pixel values of a dataset, or a DicomDecodeError saying why not."""
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    try:
        return np.asarray(ds.pixel_array)
    except Exception as exc:  # pydicom raises RuntimeError, NotImplementedError, ValueError, ...
        lines = [line.strip(" \t:|") for line in str(exc).splitlines()]
        reason = "; ".join(line for line in lines if line) or type(exc).__name__
        if ts is not None and getattr(ts, "is_compressed", False):
            raise DicomDecodeError(
                f"{path}: cannot decode its pixel data, compressed as {ts.name} ({ts}): {reason}. "
                "Install a decoder pydicom can use for it (e.g. pip install pylibjpeg pylibjpeg-libjpeg "
                "pylibjpeg-openjpeg, or python-gdcm) or decompress the file first (gdcmconv --raw, dcmdjpeg)"
            ) from None
        raise DicomDecodeError(f"{path}: cannot read its pixel data ({type(exc).__name__}: {reason}); "
                               "the file may be truncated or corrupt") from None


def _slice_position(ds) -> float | None:
    ipp, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
    if ipp is None or iop is None or len(ipp) != 3 or len(iop) != 6:
        return None
    normal = np.cross(np.asarray(iop[:3], dtype=float), np.asarray(iop[3:], dtype=float))
    return float(np.dot(normal, np.asarray(ipp, dtype=float)))


def _instance_number(ds) -> int:
    try:
        return int(ds.get("InstanceNumber", 0) or 0)
    except (TypeError, ValueError):
        return 0


def _dcmread(pydicom, path: Path):
    """dcmread; files without the Part 10 preamble (old ACR-NEMA style) only if they parse as an image."""
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # parsing a non-DICOM file by force warns on every odd byte
            ds = pydicom.dcmread(path, force=True)
            valid = "SOPClassUID" in ds and "Rows" in ds
        if not valid:
            raise InvalidDicomError("no DICOM preamble and no image attributes") from None
        return ds


def _scan_dicom(path: Path):
    """Read every DICOM image file under ``path``: (datasets with their paths, skipped)."""
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
    found, skipped, seen = [], [], {}
    for f in files:
        if f.name.upper() == "DICOMDIR":
            skipped.append((str(f), "DICOMDIR index, not an image"))
            continue
        try:
            ds = _dcmread(pydicom, f)
        except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError) as exc:
            if path.is_file():
                raise ValueError(f"{f} is not a readable DICOM file ({type(exc).__name__}: {exc})") from None
            skipped.append((str(f), "not a DICOM file"))
            continue
        if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
            what = ds.get("Modality", "") or "object"
            if path.is_file():
                raise ValueError(f"{f} is a DICOM {what} file without pixel data (not an image)")
            skipped.append((str(f), f"DICOM {what} without pixel data"))
            continue
        instance = str(ds.get("SOPInstanceUID", "") or "")
        if instance and instance in seen:  # a copied file would be stacked twice at one position
            skipped.append((str(f), f"duplicate of {seen[instance]} (same SOPInstanceUID)"))
            continue
        seen[instance] = f.name
        found.append((f, ds))
    return found, skipped


def _frame_offsets(ds, n_frames: int) -> np.ndarray | None:
    """A multi-frame file's frame positions along the slice normal relative to the first frame
    (GridFrameOffsetVector, as RT dose grids give them), or None."""
    offsets = ds.get("GridFrameOffsetVector")
    if offsets is None or len(offsets) != n_frames:
        return None
    offsets = np.asarray([float(v) for v in offsets])
    return offsets - offsets[0]  # the standard allows offsets relative to the first frame or absolute


def _warn_uneven_gaps(series_uid: str, root: Path, gaps: np.ndarray, files) -> None:
    """Warn when a series' slices are not evenly spaced: a missing slice, two slices at one position
    (e.g. two acquisitions in one series) or a change of spacing makes a stacked volume wrong."""
    median = float(np.median(gaps))
    uneven = np.abs(gaps - median) > max(0.1 * abs(median), 1e-3)
    if not uneven.any():
        return
    i = int(np.argmax(np.abs(gaps - median)))
    where = f" between {Path(files[i]).name} and {Path(files[i + 1]).name}" if files else f" after slice {i}"
    kind = "two slices at the same position" if abs(gaps[i]) < 1e-3 else f"a gap of {gaps[i]:g} mm"
    warnings.warn(f"series {series_uid} in {root}: slices are not evenly spaced ({int(uneven.sum())} of "
                  f"{len(gaps)} gaps differ from the median {median:g} mm; {kind}{where}); a slice may be "
                  "missing or the series may mix acquisitions, so its spacing is only the median",
                  UserWarning, stacklevel=4)


class _NotOneVolumeError(ValueError):
    """A series whose slices do not stack into one volume (mixed shapes, planes or spacings)."""


def _check_same_geometry(series_uid: str, root: Path, members) -> None:
    """Refuse a series whose slices lie in different planes or have different pixel spacings
    (e.g. a three-plane localizer): stacked, they would not form a volume."""
    for keyword, what in (("ImageOrientationPatient", "orientations"), ("PixelSpacing", "pixel spacings")):
        reference_file, reference = None, None
        for f, ds in members:
            value = ds.get(keyword)
            if value is None:
                continue
            value = np.asarray([float(v) for v in value])
            if reference is None:
                reference_file, reference = f, value
            elif value.shape != reference.shape or not np.allclose(value, reference, atol=1e-4):
                raise _NotOneVolumeError(
                    f"series {series_uid} in {root} mixes slice {what}: {Path(reference_file).name} has "
                    f"{keyword} {reference.tolist()} but {Path(f).name} has {value.tolist()} (e.g. a "
                    "localizer in several planes); its slices do not form one volume: read them one at a time"
                )


def _series_image(series_uid: str, members, skipped, root: Path) -> MedicalImage:
    """Decode, sort and stack one series into a MedicalImage."""
    positions = [_slice_position(ds) for _, ds in members]
    if all(p is not None for p in positions):
        order = sorted(range(len(members)), key=lambda i: (positions[i], _instance_number(members[i][1])))
    else:
        order = sorted(range(len(members)), key=lambda i: (_instance_number(members[i][1]), str(members[i][0])))
    members = [members[i] for i in order]
    positions = [positions[i] for i in order]
    _check_same_geometry(series_uid, root, members)
    arrays, headers, units = [], [], None
    for f, ds in members:
        stored = _decode(ds, f)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        if frames == 1 or stored.ndim == (2 if samples == 1 else 3):
            stored = stored[None]
        values, units = _physical(ds, stored)
        arrays.append(values)
        if "PixelData" in ds:
            del ds.PixelData
        headers.append(ds)
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        raise _NotOneVolumeError(f"series {series_uid} in {root} mixes slice shapes {sorted(shapes)}; "
                                 "read its files one at a time")
    array = np.concatenate(arrays).astype(np.result_type(*arrays), copy=False)
    first = headers[0]
    pixel_spacing = [float(v) for v in first.get("PixelSpacing", []) or []]
    slice_spacing = None
    offsets = _frame_offsets(first, len(array)) if len(members) == 1 and len(array) > 1 else None
    if offsets is not None:  # one multi-frame file (e.g. RT dose): its frames' positions
        frame_order = np.argsort(offsets, kind="stable")  # ascending, as a series' slices are sorted
        array = array[frame_order]
        positions = list(offsets[frame_order] + (positions[0] or 0.0))
    if len(array) > 1 and len(positions) == len(array) and all(p is not None for p in positions):
        gaps = np.diff(positions)
        slice_spacing = float(np.median(gaps))
        _warn_uneven_gaps(series_uid, root, gaps, [str(f) for f, _ in members] if len(members) > 1 else None)
    elif first.get("SpacingBetweenSlices") or first.get("SliceThickness"):
        slice_spacing = float(first.get("SpacingBetweenSlices") or first.get("SliceThickness"))
    spacing = (slice_spacing, *pixel_spacing) if len(pixel_spacing) == 2 else None
    modality = str(first.get("Modality", "") or "") or None
    ts = first.file_meta.get("TransferSyntaxUID") if hasattr(first, "file_meta") else None

    def listed(keyword):
        value = first.get(keyword)
        if value is None or value == "":
            return None
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return [float(v) for v in value]
        try:
            return float(value)
        except (TypeError, ValueError):
            return str(value)

    metadata = {
        "series_instance_uid": series_uid,
        "study_instance_uid": str(first.get("StudyInstanceUID", "") or ""),
        "sop_class_uid": str(first.get("SOPClassUID", "") or ""),
        "modality": modality,
        "series_description": str(first.get("SeriesDescription", "") or ""),
        "n_slices": int(array.shape[0]),
        "rows": int(array.shape[1]),
        "columns": int(array.shape[2]),
        "pixel_spacing": pixel_spacing or None,
        "slice_thickness": listed("SliceThickness"),
        "slice_positions": [float(p) for p in positions] if all(p is not None for p in positions) else None,
        "rescale_slope": listed("RescaleSlope"),
        "rescale_intercept": listed("RescaleIntercept"),
        "window_center": listed("WindowCenter"),
        "window_width": listed("WindowWidth"),
        "pixel_padding_value": listed("PixelPaddingValue"),
        "photometric_interpretation": str(first.get("PhotometricInterpretation", "") or ""),
        "bits_allocated": listed("BitsAllocated"),
        "bits_stored": listed("BitsStored"),
        "pixel_representation": listed("PixelRepresentation"),
        "transfer_syntax_uid": None if ts is None else str(ts),
        "dtype": array.dtype.name,
        "files": [str(f) for f, _ in members],
    }
    return MedicalImage(array=array, format="dicom", units=units, modality=modality, spacing=spacing,
                        metadata=metadata, headers=headers, path=root, skipped=list(skipped))


def _group_series(path: Path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    found, skipped = _scan_dicom(path)
    if not found:
        detail = f" ({len(skipped)} files skipped, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise ValueError(f"{path} holds no DICOM image files{detail}")
    groups: dict[str, list] = {}
    for f, ds in found:
        groups.setdefault(str(ds.get("SeriesInstanceUID", "") or f"(no SeriesInstanceUID: {f.name})"), []).append((f, ds))
    return groups, skipped


def read_dicom_series(path) -> list[MedicalImage]:
    """Every image series in a DICOM folder (or the one in a file), largest first.

    Parameters
    ----------
    path : str or Path
        A DICOM file or a folder searched recursively (hidden files, DICOMDIR and files that are
        not DICOM images are skipped and listed in each result's ``skipped``).

    Returns
    -------
    series : list of MedicalImage
        One per SeriesInstanceUID, slices sorted by position along the slice normal
        (ImagePositionPatient · normal of ImageOrientationPatient), else by InstanceNumber.

    Raises
    ------
    DicomDecodeError
        If a file's pixel data cannot be decoded here (a compression without an installed decoder,
        a truncated file); a series is never returned with slices missing.
    ValueError
        If there is no DICOM image, or no series whose slices form one volume.

    Warns
    -----
    UserWarning
        For each series left out because its slices do not form one volume: they mix shapes,
        orientations or pixel spacings (e.g. a localizer in three planes beside the scan).
    """
    groups, skipped = _group_series(Path(path))
    images, left_out = [], []
    for uid, members in groups.items():
        try:
            images.append(_series_image(uid, members, skipped, Path(path)))
        except _NotOneVolumeError as exc:
            left_out.append(str(exc))
    if not images:
        raise ValueError("; ".join(left_out))
    for reason in left_out:
        warnings.warn(f"{reason}; left out of read_dicom_series", UserWarning, stacklevel=2)
    return sorted(images, key=lambda im: -len(im.array))


def read_dicom(path, *, series_uid: str | None = None) -> MedicalImage:
    """Read a DICOM file or one series of a folder into physical units (HU for CT).

    Parameters
    ----------
    path : str or Path
        A DICOM file, or a folder searched recursively for DICOM files.
    series_uid : str, default=None
        Which series of a folder holding several (SeriesInstanceUID). Required then.

    Returns
    -------
    image : MedicalImage
        ``array`` of shape ``(n_slices, rows, columns)``: stored values through the Modality LUT
        or RescaleSlope/RescaleIntercept (integer dtype kept when slope and intercept are
        integers: CT comes back as int16 HU; RT dose as float32 through DoseGridScaling;
        palette colour as RGB, ``(..., 3)``), slices sorted by position; the headers and a
        metadata summary with it.

    Raises
    ------
    DicomDecodeError
        Pixel data compressed with a transfer syntax no installed decoder handles, or unreadable.
    ValueError
        Not DICOM, no pixel data, no such series, or several series and no ``series_uid``.

    Warns
    -----
    UserWarning
        If the slices are not evenly spaced (a missing slice, two at one position).

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> from synthaug.integrations.medical import read_dicom
    >>> ct = read_dicom(get_testdata_file("CT_small.dcm"))
    >>> ct.array.shape, ct.array.dtype, ct.units
    ((1, 128, 128), dtype('int16'), 'HU')
    """
    path = Path(path)
    groups, skipped = _group_series(path)
    if series_uid is not None:
        if series_uid not in groups:
            raise ValueError(f"{path} has no series {series_uid}; it holds {sorted(groups)}")
        chosen = series_uid
    elif len(groups) == 1:
        chosen = next(iter(groups))
    else:
        listing = "; ".join(f"{uid} ({len(m)} files, {m[0][1].get('Modality', '?')}, "
                            f"{str(m[0][1].get('SeriesDescription', '') or '').strip() or 'no description'})"
                            for uid, m in sorted(groups.items(), key=lambda kv: -len(kv[1])))
        raise ValueError(f"{path} holds {len(groups)} DICOM series: {listing}. Choose one with series_uid=... "
                         "(on the command line --series-uid), use read_dicom_series, or put one series per folder")
    others = [(str(f), f"other series {uid}") for uid, members in groups.items() if uid != chosen
              for f, _ in members]
    return _series_image(chosen, groups[chosen], skipped + others, path)


# -- NIfTI reading ---------------------------------------------------------------------------------
def _nifti_suffix_ok(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".nii", ".nii.gz"))


def read_nifti(path) -> MedicalImage:
    """Read a NIfTI-1 or NIfTI-2 volume (``.nii`` / ``.nii.gz``).

    Returns
    -------
    image : MedicalImage
        ``array`` in the file's axes and dtype (native byte order), or float32 when the header
        scales the values (``scl_slope``/``scl_inter``); ``affine`` the image's (sform, else
        qform) affine; ``spacing`` the voxel sizes.

    Raises
    ------
    ValueError
        If the file is not a readable NIfTI image.
    """
    nib = _nibabel()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no NIfTI file at {path}")
    if not _nifti_suffix_ok(path):
        raise ValueError(f"{path}: expected a NIfTI file ending in .nii or .nii.gz")
    try:
        img = nib.load(str(path))
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise ValueError(f"a {type(img).__name__}, not NIfTI")
        # After loading, nibabel moves scl_slope/scl_inter from the header into the array proxy.
        slope, inter = getattr(img.dataobj, "slope", 1.0), getattr(img.dataobj, "inter", 0.0)
        if slope in (None, 1.0) and inter in (None, 0.0):
            array = np.asarray(img.dataobj)
            array = array.astype(array.dtype.newbyteorder("="), copy=False)
        else:
            array = img.get_fdata(dtype=np.float32)
    except (OSError, EOFError, ValueError, nib.filebasedimages.ImageFileError) as exc:
        raise ValueError(f"{path} is not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
    if array.dtype.kind == "V":  # RGB / RGBA voxels (NIfTI datatypes 128, 2304) are records
        raise ValueError(f"{path} holds colour voxels ({img.get_data_dtype()}); only greyscale volumes are read")
    header = img.header
    space, time = header.get_xyzt_units()
    zooms = tuple(float(z) for z in header.get_zooms())
    metadata = {
        "shape": list(array.shape), "dtype": array.dtype.name, "zooms": list(zooms),
        "xyzt_units": [space, time], "affine": np.asarray(img.affine).round(6).tolist(),
        "qform_code": int(header["qform_code"]), "sform_code": int(header["sform_code"]),
        "descrip": header["descrip"].item().decode("latin-1", "replace").strip("\x00 "),
        "nifti_version": 2 if isinstance(img, nib.Nifti2Image) else 1, "files": [str(path)],
    }
    return MedicalImage(array=array, format="nifti", units="unknown", spacing=zooms,
                        affine=np.asarray(img.affine, dtype=np.float64), metadata=metadata,
                        headers=[header], path=path)


# -- intensity transforms --------------------------------------------------------------------------
def _check_values(X, name="X") -> np.ndarray:
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric; got dtype {X.dtype}")
    if X.size == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(X)).sum())} NaN or infinite values")
    return X


class _ReversibleIntensity(TransformerMixin, BaseEstimator):
    """Shared parts: remember the dtype in fit, cast exactly back in inverse_transform."""

    def _fit_dtype(self, X):
        self.dtype_ = X.dtype
        self.n_features_in_ = int(X.shape[1]) if X.ndim > 1 else 1
        # float32 holds integers up to 2**24 exactly; larger magnitudes get float64 network units
        self.output_dtype_ = np.dtype(np.float32 if np.abs(X).max() < 2**20 else np.float64)

    def _cast_back(self, X: np.ndarray) -> np.ndarray:
        if np.issubdtype(self.dtype_, np.integer):
            info = np.iinfo(self.dtype_)
            return np.clip(np.rint(X), info.min, info.max).astype(self.dtype_)
        if self.dtype_ == np.bool_:
            return X >= 0.5
        return X.astype(self.dtype_)


class CTWindow(_ReversibleIntensity):
    """A CT window as a reversible intensity transform: HU → about [0, 1] inside the window.

    Parameters
    ----------
    preset : {"lung", "mediastinum", "soft_tissue", "bone", "brain"} or None, default="soft_tissue"
        Window from :data:`WINDOW_PRESETS` (center, width in HU): lung (-600, 1500),
        mediastinum (50, 350), soft_tissue (40, 400), bone (400, 1800), brain (40, 80).
    center, width : float, default=None
        A custom window (both, with ``preset=None``; either overrides the preset's value).
    outside : {"compress", "clip", "linear"}, default="compress"
        Values outside the window: ``"compress"`` maps them linearly with ``tail_slope`` times the
        window's slope, so the window gets most of [0, 1] and nothing is lost (exactly
        invertible); ``"clip"`` is display windowing (values beyond the window come back at its
        edges: not invertible there); ``"linear"`` one slope everywhere.
    tail_slope : float, default=0.1
        Relative slope outside the window for ``outside="compress"``.

    Attributes
    ----------
    center_, width_ : float
    dtype_ : numpy dtype
        The dtype ``inverse_transform`` returns (that of the data given to ``fit``).

    Notes
    -----
    ``inverse_transform(transform(X))`` equals X exactly for integer X (e.g. int16 HU) with
    ``outside="compress"`` or ``"linear"``, and for ``"clip"`` inside the window; float X comes
    back to within float32 rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from synthaug.integrations.medical import CTWindow
    >>> hu = np.array([[-1000, -160, 40, 240, 1500]], dtype=np.int16)
    >>> w = CTWindow("soft_tissue").fit(hu)
    >>> w.transform(hu).round(3)
    array([[-0.21 ,  0.   ,  0.5  ,  1.   ,  1.315]], dtype=float32)
    >>> w.inverse_transform(w.transform(hu))
    array([[-1000,  -160,    40,   240,  1500]], dtype=int16)
    """

    def __init__(self, preset: str | None = "soft_tissue", *, center: float | None = None,
                 width: float | None = None, outside: str = "compress", tail_slope: float = 0.1):
        self.preset = preset
        self.center = center
        self.width = width
        self.outside = outside
        self.tail_slope = tail_slope

    def fit(self, X, y=None):
        """Check the parameters and remember X's dtype. ``y`` is ignored."""
        if self.preset is not None and self.preset not in WINDOW_PRESETS:
            raise ValueError(f"preset must be one of {sorted(WINDOW_PRESETS)} or None; got {self.preset!r}")
        base = WINDOW_PRESETS.get(self.preset, (None, None))
        center = self.center if self.center is not None else base[0]
        width = self.width if self.width is not None else base[1]
        if center is None or width is None:
            raise ValueError("give a preset, or both center and width (in HU)")
        if not np.isfinite(center) or not np.isfinite(width) or width <= 0:
            raise ValueError(f"width must be a positive number and center finite; got center={center}, width={width}")
        if self.outside not in ("compress", "clip", "linear"):
            raise ValueError(f"outside must be 'compress', 'clip' or 'linear'; got {self.outside!r}")
        if not (np.isfinite(self.tail_slope) and 0 < self.tail_slope <= 1):
            raise ValueError(f"tail_slope must be in (0, 1]; got {self.tail_slope!r}")
        self.center_, self.width_ = float(center), float(width)
        self._fit_dtype(_check_values(X))
        return self

    def transform(self, X):
        """HU → window units: the window's bottom maps to 0, its top to 1."""
        check_is_fitted(self)
        X = _check_values(X).astype(np.float64)
        lo = self.center_ - self.width_ / 2
        Y = (X - lo) / self.width_
        if self.outside == "clip":
            Y = np.clip(Y, 0.0, 1.0)
        elif self.outside == "compress":
            Y = np.where(Y < 0, Y * self.tail_slope, np.where(Y > 1, 1 + (Y - 1) * self.tail_slope, Y))
        return Y.astype(self.output_dtype_)

    def inverse_transform(self, X):
        """Window units → HU in the dtype seen in ``fit`` (rounded and clipped for integers)."""
        check_is_fitted(self)
        Y = _check_values(X).astype(np.float64)
        if self.outside == "compress":
            Y = np.where(Y < 0, Y / self.tail_slope, np.where(Y > 1, 1 + (Y - 1) / self.tail_slope, Y))
        return self._cast_back(Y * self.width_ + (self.center_ - self.width_ / 2))


class PercentileNormalizer(_ReversibleIntensity):
    """Percentile normalisation (MR): ``(x - p_lower) / (p_upper - p_lower)``, exactly invertible.

    MR intensities have no absolute unit; scaling between two percentiles of the volume puts
    different scans on a common footing without letting a few bright voxels set the scale.

    Parameters
    ----------
    lower, upper : float, default=1.0, 99.0
        Percentiles (0–100) mapped to 0 and 1, computed over all values given to ``fit``.
    clip : bool, default=False
        Clip to [0, 1] (not invertible beyond the percentiles).

    Attributes
    ----------
    low_, high_ : float
        The two percentiles' values.
    dtype_ : numpy dtype
    """

    def __init__(self, lower: float = 1.0, upper: float = 99.0, *, clip: bool = False):
        self.lower = lower
        self.upper = upper
        self.clip = clip

    def fit(self, X, y=None):
        """Compute the two percentiles of X. ``y`` is ignored."""
        if not (0 <= self.lower < self.upper <= 100):
            raise ValueError(f"need 0 <= lower < upper <= 100; got lower={self.lower}, upper={self.upper}")
        X = _check_values(X)
        self.low_, self.high_ = (float(v) for v in np.percentile(X, [self.lower, self.upper]))
        if self.high_ <= self.low_:
            self.high_ = self.low_ + 1.0  # a constant volume: shift only
        self._fit_dtype(X)
        return self

    def transform(self, X):
        check_is_fitted(self)
        Y = (_check_values(X).astype(np.float64) - self.low_) / (self.high_ - self.low_)
        return (np.clip(Y, 0.0, 1.0) if self.clip else Y).astype(self.output_dtype_)

    def inverse_transform(self, X):
        check_is_fitted(self)
        return self._cast_back(_check_values(X).astype(np.float64) * (self.high_ - self.low_) + self.low_)


class _Identity(_ReversibleIntensity):
    """Physical units unchanged (``intensity=None``), cast back to the dtype on the way out."""

    def fit(self, X, y=None):
        self._fit_dtype(_check_values(X))
        return self

    def transform(self, X):
        check_is_fitted(self)
        return _check_values(X).astype(self.output_dtype_)

    def inverse_transform(self, X):
        check_is_fitted(self)
        return self._cast_back(_check_values(X).astype(np.float64))


# -- patches ---------------------------------------------------------------------------------------
def _pair(value, name) -> tuple[int, int]:
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                                 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them; got {value!r}")
    return int(pair[0]), int(pair[1])


def _starts(size: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)  # one more patch flush with the border: every pixel covered
    return starts


def extract_patches(images, patch_size, stride=None) -> tuple[np.ndarray, np.ndarray]:
    """Cut images into (overlapping) patches that together cover every pixel.

    Parameters
    ----------
    images : ndarray of shape (n, H, W), (n, H, W, C) or (H, W)
    patch_size : int or (int, int)
    stride : int or (int, int), default=None
        Step between patches; ``None``: the patch size (no overlap). Where the image size is not
        a multiple, a last patch flush with the border is added.

    Returns
    -------
    patches : ndarray of shape (n_patches, ph, pw[, C])
        In the images' dtype.
    positions : ndarray of shape (n_patches, 3)
        (image index, top row, left column) of each patch, for :func:`reassemble_patches`.
    """
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (n, H, W), (n, H, W, C) or (H, W); got shape {images.shape}")
    ph, pw = _pair(patch_size, "patch_size")
    sh, sw = _pair(stride if stride is not None else (ph, pw), "stride")
    n, h, w = images.shape[:3]
    if ph > h or pw > w:
        raise ValueError(f"patch_size {(ph, pw)} is larger than the images ({h}×{w})")
    if sh > ph or sw > pw:
        raise ValueError(f"stride {(sh, sw)} is larger than patch_size {(ph, pw)}: the patches would leave "
                         "pixels between them uncovered")
    grid = [(r, c) for r in _starts(h, ph, sh) for c in _starts(w, pw, sw)]
    positions = np.array([(i, r, c) for i in range(n) for r, c in grid], dtype=np.int64)
    patches = np.stack([images[i, r:r + ph, c:c + pw] for i, r, c in positions])
    return patches, positions


def reassemble_patches(patches, positions, image_shape) -> np.ndarray:
    """Put patches back into images, averaging where they overlap.

    Parameters
    ----------
    patches : ndarray of shape (n_patches, ph, pw[, C])
    positions : ndarray of shape (n_patches, 3)
        From :func:`extract_patches`.
    image_shape : (int, int)
        (H, W) of the images.

    Returns
    -------
    images : ndarray of shape (n_images, H, W[, C])
        In the patches' dtype (integers rounded). Patches cut from an image give it back exactly.

    Raises
    ------
    ValueError
        If the patches leave pixels uncovered or fall outside the image.
    """
    patches = np.asarray(patches)
    positions = np.asarray(positions, dtype=np.int64)
    if patches.ndim not in (3, 4) or positions.shape != (len(patches), 3):
        raise ValueError(f"patches must be (n, ph, pw[, C]) with positions of shape (n, 3); got "
                         f"{patches.shape} and {positions.shape}")
    h, w = _pair(tuple(image_shape), "image_shape")
    ph, pw = patches.shape[1:3]
    if (positions[:, 1:] < 0).any() or (positions[:, 1] + ph > h).any() or (positions[:, 2] + pw > w).any():
        raise ValueError(f"some patch positions fall outside the {h}×{w} images")
    n_images = int(positions[:, 0].max()) + 1
    total = np.zeros((n_images, h, w) + patches.shape[3:], dtype=np.float64)
    count = np.zeros((n_images, h, w), dtype=np.int64)
    for patch, (i, r, c) in zip(patches, positions):
        total[i, r:r + ph, c:c + pw] += patch
        count[i, r:r + ph, c:c + pw] += 1
    if (count == 0).any():
        raise ValueError(f"the patches leave {int((count == 0).sum())} pixels uncovered")
    mean = total / (count if patches.ndim == 3 else count[..., None])
    if np.issubdtype(patches.dtype, np.integer):
        return np.rint(mean).astype(patches.dtype)
    return mean.astype(patches.dtype)


# -- DICOM writing ---------------------------------------------------------------------------------
def _template_dataset(template):
    pydicom = _pydicom()
    if isinstance(template, MedicalImage):
        if template.format != "dicom" or not template.headers:
            raise ValueError("template must be a DICOM MedicalImage (from read_dicom), a pydicom Dataset "
                             f"or a DICOM file; got a {template.format} image")
        return template.headers[0]
    if isinstance(template, pydicom.Dataset):
        return template
    if isinstance(template, (str, Path)):
        return pydicom.dcmread(template, stop_before_pixels=True)
    raise TypeError(f"template must be a MedicalImage, a pydicom Dataset or a path; got {type(template).__name__}")


def _stored_dtype(bits_allocated: int, signed: bool) -> np.dtype:
    if bits_allocated not in (8, 16, 32):
        raise ValueError(f"template has BitsAllocated={bits_allocated}; write_dicom supports 8, 16 and 32")
    return np.dtype(f"<{'i' if signed else 'u'}{bits_allocated // 8}")


def _to_stored(images: np.ndarray, template) -> tuple[np.ndarray, int]:
    """Physical values → the template's stored representation; (stored, number of clipped pixels)."""
    slope = float(template.get("RescaleSlope", 1) or 1)
    intercept = float(template.get("RescaleIntercept", 0) or 0)
    bits_allocated = int(template.get("BitsAllocated", 16))
    bits_stored = int(template.get("BitsStored", bits_allocated))
    signed = int(template.get("PixelRepresentation", 0)) == 1
    dtype = _stored_dtype(bits_allocated, signed)
    lo, hi = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2 ** bits_stored - 1)
    stored = np.rint((images.astype(np.float64) - intercept) / slope)
    clipped = int(((stored < lo) | (stored > hi)).sum())
    return np.clip(stored, lo, hi).astype(dtype), clipped


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} is a file; write_dicom needs a folder")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; pass overwrite=True to write into it")


def write_dicom(images, template, out_dir, *, record: dict | None = None, key=None,
                series_description: str | None = None, prefix: str = "synthetic",
                overwrite: bool = False, ed25519_private_key=None) -> list[Path]:
    """Write synthetic slices as a new DICOM series derived from a template.

    Each file is a single-frame instance of the template's SOP class (CT, MR or Secondary
    Capture Image Storage), Explicit VR Little Endian, with:

    - new StudyInstanceUID, SeriesInstanceUID and FrameOfReferenceUID (shared by the series) and
      a new SOPInstanceUID per file, all from ``pydicom.uid.generate_uid``;
    - PatientName ``SYNTHETIC``, a new random PatientID, empty birth date and sex,
      PatientIdentityRemoved ``YES``; only the template's technical attributes (geometry, pixel
      encoding, acquisition technique) are copied — private tags, names, dates, institutions,
      devices, and references to the source images are not;
    - ImageType ``DERIVED\\SECONDARY`` (with the template's third value, e.g. AXIAL), a
      SeriesDescription that starts with ``SYNTHETIC``, and an ImageComments saying so;
    - pixel data in the template's BitsAllocated, BitsStored and PixelRepresentation, through
      the inverse of its RescaleSlope/RescaleIntercept (HU → stored values);
    - the provenance record, signed for that file's pixels, in Derivation Description and the
      private block ``(0011,0010) = "synthaug"`` (:func:`synthaug.provenance.dicom_tags`), so
      that ``synthaug verify`` recognises the files.

    Parameters
    ----------
    images : ndarray of shape (n, H, W) or (H, W)
        Slices in physical units (HU for a CT template). Any size: Rows and Columns are set
        from the images (e.g. 32×32 patches); pixel spacing is the template's.
    template : MedicalImage, pydicom Dataset or path
        A greyscale single-frame DICOM image (e.g. ``read_dicom(...)``).
    out_dir : str or Path
        Folder for ``<prefix>_0001.dcm``, ...; created if needed.
    record : dict, default=None
        A provenance record (:func:`synthaug.provenance.build_record`); ``None`` writes a
        record without a generator.
    key : str or bytes, default=None
        Signing key (``$SYNTHAUG_WATERMARK_KEY``, else the public default key).
    series_description : str, default=None
        Text after ``SYNTHETIC`` in SeriesDescription (64 characters in all).
    prefix : str, default="synthetic"
    overwrite : bool, default=False
        Write into a non-empty folder (existing files of the same names are replaced).
    ed25519_private_key : bytes or cryptography Ed25519PrivateKey, default=None
        Also sign each record with Ed25519 (see :func:`synthaug.provenance.sign_record`).

    Returns
    -------
    paths : list of Path

    Warns
    -----
    UserWarning
        If values fall outside what the template's pixel representation can store (they are
        clipped to it).
    """
    pydicom = _pydicom()
    from synthaug.io import atomic_write_bytes
    from synthaug.provenance import record as provenance

    images = _check_values(images, "images")
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"images must be greyscale slices (n, H, W) or (H, W); got shape {images.shape}")
    template = _template_dataset(template)
    sop_class = str(template.get("SOPClassUID", ""))
    if sop_class not in _dicom_synthetic.WRITABLE_SOP_CLASSES:
        raise ValueError(f"template SOP class {sop_class or '(none)'} is not supported; use a single-frame "
                         f"{', '.join(_dicom_synthetic.WRITABLE_SOP_CLASSES.values())} template")
    if int(template.get("SamplesPerPixel", 1) or 1) != 1 or int(template.get("NumberOfFrames", 1) or 1) != 1:
        raise ValueError("template must be a greyscale single-frame image (SamplesPerPixel 1, one frame)")
    if str(template.get("PhotometricInterpretation", "MONOCHROME2")) not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"template PhotometricInterpretation {template.PhotometricInterpretation} is not greyscale")
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, overwrite)
    stored, clipped = _to_stored(images, template)
    if clipped:
        warnings.warn(f"{clipped} pixel values lie outside what the template's pixel representation can "
                      "store; they were clipped to it", UserWarning, stacklevel=2)
    description = " ".join(f"SYNTHETIC {series_description or 'synthaug - NOT FOR CLINICAL USE'}".split())[:64]
    if record is None:
        record = provenance.build_record(None, watermarked=False, extra={"writer": "write_dicom"})
    from pydicom.uid import generate_uid

    uids = {"study": generate_uid(), "series": generate_uid(), "frame": generate_uid()}
    patient_id = "SYN-" + secrets.token_hex(6).upper()
    now = datetime.now(timezone.utc)
    width = max(4, len(str(len(stored))))
    paths = []
    for i, pixels in enumerate(stored):
        name = f"{prefix}_{i + 1:0{width}d}.dcm"
        with _dicom_synthetic.strict_writing(pydicom):
            ds = _dicom_synthetic.synthetic_dataset(pydicom, template, uids=uids, index=i, rows=pixels.shape[0], columns=pixels.shape[1],
                                    description=description, now=now, patient_id=patient_id)
            ds.PixelData = np.ascontiguousarray(pixels).tobytes()
            signed = provenance.sign_record({**record, "output": {"name": name, "sha256": provenance.content_hash(pixels)}},
                                            key, ed25519_private_key=ed25519_private_key)
            for tag, vr, value in provenance.dicom_tags(signed):
                ds.add_new(tag, vr, value)
        paths.append(atomic_write_bytes(out_dir / name, _dicom_synthetic.encode(pydicom, ds)))
    return paths


# -- NIfTI writing ---------------------------------------------------------------------------------
def _reference_nifti(reference):
    nib = _nibabel()
    if isinstance(reference, MedicalImage):
        if reference.format != "nifti":
            raise ValueError("reference must be a NIfTI MedicalImage (from read_nifti), a nibabel image or a path")
        return reference.affine, reference.headers[0]
    if isinstance(reference, (nib.Nifti1Image, nib.Nifti2Image)):
        return reference.affine, reference.header
    if isinstance(reference, (str, Path)):
        img = nib.load(str(reference))
        return img.affine, img.header
    raise TypeError(f"reference must be a MedicalImage, a nibabel image or a path; got {type(reference).__name__}")


def write_nifti(volume, reference, path, *, record: dict | None = None, key=None, overwrite: bool = False,
                ed25519_private_key=None) -> Path:
    """Write a volume as NIfTI with a reference image's affine and header.

    The header is the reference's (voxel sizes, units, qform/sform codes) with the volume's
    shape and dtype, no intensity scaling (the values are written as given), ``descrip`` saying
    SYNTHETIC, and its extensions replaced by one comment extension holding the signed
    provenance record (extensions of the reference can hold identifying data, e.g. DICOM tags).

    Parameters
    ----------
    volume : ndarray
        In the axes convention of nibabel (x, y, z[, t]); any numeric dtype nibabel writes.
    reference : MedicalImage, nibabel image or path
        A NIfTI image whose affine (and header) the output takes.
    path : str or Path
        ``.nii`` or ``.nii.gz`` (gzip-compressed).
    record : dict, default=None
        Provenance record (:func:`synthaug.provenance.build_record`).
    key : str or bytes, default=None
    overwrite : bool, default=False
    ed25519_private_key : bytes or cryptography Ed25519PrivateKey, default=None
        Also sign the record with Ed25519.

    Returns
    -------
    path : Path
    """
    nib = _nibabel()
    from synthaug.io import atomic_write_bytes
    from synthaug.provenance import record as provenance

    path = Path(path)
    if not _nifti_suffix_ok(path):
        raise ValueError(f"{path}: a NIfTI file name must end in .nii or .nii.gz")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    volume = _check_values(volume, "volume")
    if volume.dtype == np.bool_:
        volume = volume.astype(np.uint8)
    volume = volume.astype(volume.dtype.newbyteorder("<"), copy=False)
    affine, ref_header = _reference_nifti(reference)
    image_class = nib.Nifti2Image if isinstance(ref_header, nib.Nifti2Header) else nib.Nifti1Image
    header = ref_header.copy()
    header.extensions.clear()
    header.set_data_dtype(volume.dtype)
    header["descrip"] = b"SYNTHETIC (synthaug) - not for clinical use"
    header["aux_file"] = b""
    img = image_class(volume, affine, header=header)
    img.header.set_slope_inter(1.0, 0.0)
    if record is None:
        record = provenance.build_record(None, watermarked=False, extra={"writer": "write_nifti"})
    signed = provenance.sign_record({**record, "output": {"name": path.name, "sha256": provenance.content_hash(volume)}},
                                    key, ed25519_private_key=ed25519_private_key)
    img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", provenance.sidecar_bytes(signed)))
    data = img.to_bytes()
    if path.name.lower().endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    return atomic_write_bytes(path, data)


def read_nifti_record(path) -> dict | None:
    """The synthaug provenance record in a NIfTI file written by :func:`write_nifti`, else ``None``."""
    nib = _nibabel()
    from synthaug.provenance.record import FORMAT

    for ext in nib.load(str(path)).header.extensions:
        if ext.get_code() == 6:
            try:
                rec = json.loads(ext.get_content())
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(rec, dict) and rec.get("format") == FORMAT:
                return rec
    return None


# -- the augmenter ---------------------------------------------------------------------------------
def _is_fitted(estimator) -> bool:
    try:
        check_is_fitted(estimator)
    except Exception:  # NotFittedError, or TypeError for objects that are not estimators
        return False
    return True


def _as_image(X):
    if isinstance(X, MedicalImage):
        return X
    if isinstance(X, (str, Path)):
        path = Path(X)
        if path.is_file() and _nifti_suffix_ok(path):
            return read_nifti(path)
        if path.is_file() and path.suffix.lower() in (".hdr", ".img"):
            raise ValueError(f"{path} looks like an Analyze or NIfTI pair (.hdr/.img), which synthaug does not "
                             "read; convert it to one .nii.gz file first, e.g. "
                             "nibabel.save(nibabel.load('scan.hdr'), 'scan.nii.gz')")
        return read_dicom(path)
    return None


def default_generator(random_state=None, epochs: int = 300, verbose: int = 0):
    """The generator a :class:`MedicalAugmenter` fits when given none: a small convolutional
    WGAN-GP, the best of synthaug's generators on CT patches in ``benchmarks/medical.py``."""
    from synthaug.models.gan import GAN

    return GAN(latent_dim=32, hidden_units=(128, 128), conv_filters=(16, 32), epochs=epochs, batch_size=32,
               random_state=random_state, verbose=verbose)


class MedicalAugmenter(BaseEstimator):
    """Train a synthaug generator on patches (or whole slices) of a medical image; write a
    synthetic series.

    The image is read (DICOM folder or file, NIfTI), mapped to a window's units
    (:class:`CTWindow`, :class:`PercentileNormalizer`), cut into patches, and a clone of
    ``generator`` is fitted on them. ``generate`` maps samples back to physical units and the
    input's dtype (int16 HU stay int16 HU); ``write`` writes them as a DICOM series (from the
    input's first slice as template) or a NIfTI volume, with the signed provenance record.

    Parameters
    ----------
    generator : GenerativeEstimator, default=None
        E.g. ``synthaug.VAE(...)``, ``synthaug.GAN(...)``, ``synthaug.Flow(...)``; ``None``:
        :func:`default_generator`. Cloned and fitted unless ``prefit=True``.
    patch_size : int or None, default=32
        Side of the square training patches; ``None`` trains on whole slices.
    stride : int, default=None
        Step between training patches; ``None``: half the patch size.
    intensity : str, transformer or None, default="auto"
        ``"auto"``: the soft-tissue :class:`CTWindow` for CT in Hounsfield units, a 1–99 %
        :class:`PercentileNormalizer` otherwise; a preset name (``"lung"``, ``"soft_tissue"``,
        ...), ``"percentile"``, ``None`` (physical units as they are), or a transformer with
        ``inverse_transform`` (cloned and fitted unless ``prefit=True``).
    prefit : bool, default=False
        Use ``generator`` (and a transformer ``intensity``) as already fitted: ``fit`` then only
        reads the image (for the template) and checks the patch shape.
    watermark : bool, default=True
        Embed synthaug's invisible watermark in generated samples of at least 32×32 pixels
        (RMS about 17 HU on CT: set False for uses where that matters; the record stays).
    random_state : int or None, default=None
        Seeds the generator when it has no ``random_state`` of its own.

    Attributes
    ----------
    image_ : MedicalImage or None
        What ``fit`` read (``None`` when it got an array).
    intensity_ : transformer
    generator_ : GenerativeEstimator
    sample_shape_ : tuple
        Shape of one training sample (patch or slice).
    n_training_samples_ : int
    dtype_ : numpy dtype
        The physical-unit dtype that ``generate`` returns.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> from synthaug import VAE
    >>> from synthaug.integrations.medical import MedicalAugmenter
    >>> aug = MedicalAugmenter(VAE(epochs=5), patch_size=32, random_state=0)
    >>> aug = aug.fit(get_testdata_file("CT_small.dcm"))          # doctest: +SKIP
    >>> hu = aug.generate(20, random_state=0)                    # doctest: +SKIP
    >>> aug.write(hu, "synthetic-ct/", format="dicom", seed=0)   # doctest: +SKIP
    """

    def __init__(self, generator=None, *, patch_size: int | None = 32, stride: int | None = None,
                 intensity="auto", prefit: bool = False, watermark: bool = True, random_state=None):
        self.generator = generator
        self.patch_size = patch_size
        self.stride = stride
        self.intensity = intensity
        self.prefit = prefit
        self.watermark = watermark
        self.random_state = random_state

    def _intensity(self, image):
        spec = self.intensity
        if spec is None:
            return _Identity()
        if isinstance(spec, str):
            if spec == "auto":
                in_hu = image is not None and image.modality == "CT" and image.units == "HU"
                return CTWindow("soft_tissue") if in_hu else PercentileNormalizer()
            if spec == "percentile":
                return PercentileNormalizer()
            if spec in WINDOW_PRESETS:
                return CTWindow(spec)
            raise ValueError(f"intensity must be 'auto', 'percentile', one of {sorted(WINDOW_PRESETS)}, None or "
                             f"a transformer; got {spec!r}")
        if not (hasattr(spec, "transform") and hasattr(spec, "inverse_transform")):
            raise TypeError(f"intensity transformer {type(spec).__name__} needs transform and inverse_transform")
        return spec if self.prefit else clone(spec)

    def _training_samples(self, units: np.ndarray) -> np.ndarray:
        if self.patch_size is None:
            return units
        stride = self.stride if self.stride is not None else max(1, self.patch_size // 2)
        return extract_patches(units, self.patch_size, stride)[0]

    def fit(self, X, y=None):
        """Read X if it is a path, fit the intensity transform and the generator.

        Parameters
        ----------
        X : MedicalImage, path (DICOM file or folder, ``.nii``/``.nii.gz``) or ndarray
            An array is slices ``(n, H, W)`` in physical units.
        y : Ignored

        Returns
        -------
        self : MedicalAugmenter
        """
        image = _as_image(X)
        slices = image.slices() if image is not None else np.asarray(X)
        if slices.ndim == 2:
            slices = slices[None]
        if slices.ndim != 3:
            raise ValueError(f"expected greyscale slices (n, H, W); got shape {slices.shape} "
                             "(colour images are not supported here)")
        slices = _check_values(slices, "X" if image is None or image.path is None else str(image.path))
        if self.patch_size is not None:
            _pair(self.patch_size, "patch_size")
        # a preset is a window in HU; a CTWindow(preset=None, center=..., width=...) may be the user's own units
        is_window = (isinstance(self.intensity, str) and self.intensity in WINDOW_PRESETS) \
            or (isinstance(self.intensity, CTWindow) and self.intensity.preset is not None)
        if is_window and image is not None and image.format == "dicom" and image.units != "HU":
            # A NIfTI's units are unknown (a CT volume is often in HU); a DICOM says what it holds.
            raise ValueError(f"intensity={self.intensity!r} is a CT window in Hounsfield units, but this "
                             f"{image.modality or 'DICOM'} series holds {image.units!r} values; use "
                             "'percentile' (or 'auto') for data that is not CT")
        self.image_ = image
        self.dtype_ = slices.dtype
        self.intensity_ = self._intensity(image)
        if not (self.prefit and _is_fitted(self.intensity_)):
            self.intensity_.fit(slices)
        samples = self._training_samples(self.intensity_.transform(slices))
        self.sample_shape_ = tuple(samples.shape[1:])
        self.n_training_samples_ = len(samples)
        generator = self.generator if self.generator is not None else default_generator(self.random_state)
        if self.prefit:
            check_is_fitted(generator)
            if tuple(generator.input_shape_) != self.sample_shape_:
                raise ValueError(f"the prefit generator makes samples of shape {tuple(generator.input_shape_)}, "
                                 f"but patch_size gives {self.sample_shape_}")
            self.generator_ = generator
        else:
            generator = clone(generator)
            if "random_state" in generator.get_params() and generator.get_params()["random_state"] is None:
                generator.set_params(random_state=self.random_state)
            self.generator_ = generator.fit(samples)
        return self

    def generate(self, n_samples: int, random_state=None) -> np.ndarray:
        """Synthetic patches (or slices) in physical units and the training data's dtype.

        Returns
        -------
        X : ndarray of shape (n_samples, *sample_shape_)
            E.g. int16 HU for CT; watermarked if ``watermark`` and at least 32×32.
        """
        check_is_fitted(self)
        out = self.generator_.generate(n_samples, random_state=random_state, watermark=False)
        X = out[0] if isinstance(out, tuple) else out
        X = self.intensity_.inverse_transform(X)
        X = np.asarray(X).astype(self.dtype_, copy=False)
        if self.watermark:
            from synthaug.provenance.generated import mark_samples

            X = mark_samples(self.generator_, X)
        return X

    def provenance_record(self, X=None, seed=None) -> dict:
        """The unsigned provenance record of samples from this augmenter."""
        check_is_fitted(self)
        from synthaug.provenance import build_record
        from synthaug.provenance.generated import carries_payload, is_markable

        marked = bool(self.watermark and X is not None and is_markable(np.asarray(X)))
        extra = {"integration": "synthaug.integrations.medical.MedicalAugmenter",
                 "patch_size": self.patch_size, "intensity": type(self.intensity_).__name__,
                 "units": None if self.image_ is None else self.image_.units,
                 "source_format": None if self.image_ is None else self.image_.format}
        return build_record(self.generator_, seed=seed, watermarked=marked,
                            zero_bit=marked and not carries_payload(np.asarray(X)), extra=extra)

    def write(self, X, out_dir, *, format: str = "dicom", template=None, seed=None, overwrite: bool = False,
              key=None, ed25519_private_key=None) -> list[Path]:
        """Write samples from :meth:`generate` into ``out_dir`` with a signed provenance record.

        Parameters
        ----------
        X : ndarray of shape (n, H, W)
            Samples in physical units.
        out_dir : str or Path
        format : {"dicom", "nifti"}, default="dicom"
            ``"dicom"``: a new series (:func:`write_dicom`), ``synthetic_0001.dcm``, ...;
            ``"nifti"``: ``synthetic.nii.gz``, the samples stacked on the third axis (H, W, n),
            with the reference's affine (:func:`write_nifti`).
        template : DICOM template or NIfTI reference, default=None
            ``None``: the image read in ``fit``.
        seed : int, default=None
            The ``random_state`` the samples were generated with, for the record.
        overwrite : bool, default=False
        key : str or bytes, default=None
            Signing key.
        ed25519_private_key : bytes or cryptography Ed25519PrivateKey, default=None
            Also sign each record with Ed25519 (see :func:`synthaug.provenance.sign_record`).

        Returns
        -------
        paths : list of Path
        """
        check_is_fitted(self)
        X = np.asarray(X)
        reference = template if template is not None else self.image_
        if reference is None:
            raise ValueError("this augmenter was fitted on an array: pass template= (a DICOM image or NIfTI reference)")
        record = self.provenance_record(X, seed)
        if format == "dicom":
            return write_dicom(X, reference, out_dir, record=record, key=key, overwrite=overwrite,
                               series_description=f"synthaug {type(self.generator_).__name__}",
                               ed25519_private_key=ed25519_private_key)
        if format == "nifti":
            out_dir = Path(out_dir)
            _check_out_dir(out_dir, overwrite)
            return [write_nifti(np.moveaxis(X, 0, -1), reference, out_dir / "synthetic.nii.gz", record=record,
                                key=key, overwrite=overwrite, ed25519_private_key=ed25519_private_key)]
        raise ValueError(f"format must be 'dicom' or 'nifti'; got {format!r}")
