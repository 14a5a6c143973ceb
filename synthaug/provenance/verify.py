"""``verify``: which files are synthaug output, by watermark and by provenance record."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from synthaug.provenance import record as _record
from synthaug.provenance.watermark import DEFAULT_FPR, WatermarkResult, detect

if TYPE_CHECKING:
    from synthaug.provenance.content_credentials import ContentCredentials

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
ARRAY_SUFFIXES = {".npy", ".npz"}
DICOM_SUFFIXES = {".dcm"}
_MAX_STACK_TESTS = 64  # images of a stack tested for the watermark, evenly spaced
VERIFIABLE_SUFFIXES = IMAGE_SUFFIXES | ARRAY_SUFFIXES | DICOM_SUFFIXES


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found in one file.

    Attributes
    ----------
    path : str
    synthetic : bool
        The watermark was detected, or the file carries a synthaug provenance record (whatever
        its status, damaged included: ``record_status`` says how far it can be trusted), or is
        listed in a sidecar record (``provenance.json`` that is a synthaug record: a damaged
        or foreign sidecar does not count), or a C2PA manifest that
        holds a synthaug record or declares the file made by a trained model (whoever signed it;
        ``content_credentials.state`` says whether it checks).
    watermark : WatermarkResult or None
        ``None`` where no pixel watermark can be tested (tabular arrays, unreadable files). For a
        stack of images (a multi-frame DICOM, an array of images) the most significant of up to
        64 evenly spaced images tested, its p-value multiplied by their number (Bonferroni), so
        the file's false-positive rate stays ``fpr``.
    record_status : str
        ``"valid"`` (signature checks and the pixels are the ones the record lists),
        ``"image-modified"`` (signature checks, pixels changed since), ``"invalid-signature"``
        (the record was changed), ``"unknown-key"`` (signed under another key), ``"unsigned"``,
        ``"unreadable"`` (a damaged record) or ``"none"`` (no record found).
    record : dict or None
        The record found (PNG text chunk, DICOM tag or sidecar JSON).
    error : str
        Why the file could not be read, else ``""``.
    content_credentials : ContentCredentials or None
        The file's C2PA manifest (checked only when the ``c2pa`` extra is installed), else None.
    """

    path: str
    synthetic: bool
    watermark: WatermarkResult | None
    record_status: str
    record: dict | None = None
    error: str = ""
    content_credentials: ContentCredentials | None = None

    @property
    def p_value(self) -> float | None:
        return None if self.watermark is None else self.watermark.p_value

    @property
    def payload(self) -> int | None:
        return None if self.watermark is None else self.watermark.payload

    def to_dict(self) -> dict:
        wm = self.watermark
        return {
            "path": self.path,
            "synthetic": self.synthetic,
            "watermark_detected": None if wm is None else wm.detected,
            "p_value": None if wm is None else wm.p_value,
            "payload": None if wm is None or wm.payload is None else f"{wm.payload:08x}",
            "transform": None if wm is None or not wm.detected else wm.transform,
            "watermark_note": None if wm is None or not wm.message else wm.message,
            "record_status": self.record_status,
            "record_created": None if not self.record else self.record.get("created"),
            "record_generator": None if not self.record else (self.record.get("generator") or {}).get("class"),
            "c2pa": None if self.content_credentials is None else self.content_credentials.state,
            "c2pa_digital_source_type": (None if self.content_credentials is None
                                         else self.content_credentials.digital_source_type),
            "error": self.error or None,
        }


def _collect(paths) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VERIFIABLE_SUFFIXES
                                and not any(part.startswith(".") for part in p.relative_to(path).parts)))
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return files


def _read(path: Path):
    """(pixels or array, embedded record or None, the file's bytes for an image else None, whether
    the pixels are a stack of images).

    An image file is read once: its bytes go to Pillow here and to the C2PA reader later.
    Raises on unreadable files.
    """
    suffix = path.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as npz:
                if not npz.files:
                    raise ValueError(f"{path} holds no arrays")
                array = npz["X"] if "X" in npz else npz[npz.files[0]]
        # synthaug writes samples as (n, H, W) or (n, H, W, C); (n, d) rows are tabular
        return array, None, None, array.ndim == 3 or (array.ndim == 4 and array.shape[-1] <= 4)
    if suffix in DICOM_SUFFIXES:
        try:
            import pydicom
        except ImportError:
            raise ValueError("reading DICOM needs pydicom (pip install pydicom)") from None
        ds = pydicom.dcmread(path)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        return ds.pixel_array, _record.read_dicom_record(ds), None, frames > 1
    from PIL import Image

    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        rec_text = getattr(img, "text", {}).get(_record.PNG_KEY) if img.format == "PNG" else None
        if img.mode not in ("L", "LA", "I;16", "I;16B", "I;16L", "I", "F", "RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
        pixels = np.asarray(img)
    if pixels.dtype == np.int32 and pixels.size and pixels.min() >= 0 and pixels.max() <= 65535:
        pixels = pixels.astype(np.uint16)  # mode "I" of a 16-bit PNG
    return pixels, (None if rec_text is None else _record.parse_record_text(rec_text)), data, False


def _detect_stack(stack: np.ndarray, key, fpr: float) -> WatermarkResult:
    """The watermark test of a stack of images as one test at ``fpr`` (see VerifyResult)."""
    if len(stack) == 0:
        return WatermarkResult(False, 1.0, None, message="no images in the stack")
    tested = np.unique(np.linspace(0, len(stack) - 1, min(len(stack), _MAX_STACK_TESTS)).round().astype(int))
    found = detect([stack[i] for i in tested], key, fpr=fpr / len(tested))
    best = int(np.argmin([r.p_value for r in found]))
    p_value = min(1.0, found[best].p_value * len(tested))
    note = f"image {tested[best]} of {len(stack)}, the most significant of {len(tested)} tested"
    return replace(found[best], p_value=p_value, detected=p_value <= fpr,
                   message=found[best].message or note)


def _record_status(path: Path, pixels, embedded, key, ed25519_public_key):
    rec, name = (embedded, None) if embedded is not None else _record.find_sidecar_record(path)
    if rec is None:
        return "none", None
    if not rec:
        return "unreadable", None
    status = _record.verify_record(rec, key, ed25519_public_key=ed25519_public_key)
    if status == "valid" and not _record.check_output(rec, pixels, name):
        status = "image-modified"
    return status, rec


def _content_credentials(path: Path, data: bytes | None):
    """The C2PA manifest in an image file's bytes ``data`` when c2pa-python is installed; None
    without one (or without c2pa-python, or for a file that is not an image C2PA reads)."""
    from synthaug.provenance import content_credentials

    mime_type = content_credentials.mime_type_for(path)
    if data is None or mime_type is None or not content_credentials.available():
        return None
    try:
        return content_credentials.read(data, mime_type=mime_type)
    except (content_credentials.require_c2pa().C2paError, OSError) as exc:
        # A damaged manifest (c2pa-python raises C2paError subclasses for corrupt JUMBF, truncated
        # files, undecodable assertions): report it as such rather than fail the whole run.
        return content_credentials.ContentCredentials(state="Invalid", digital_source_type=None,
                                                      synthaug_record=None, failures=(f"unreadable: {exc}",))


def verify(paths, key: str | bytes | None = None, *, fpr: float = DEFAULT_FPR,
           ed25519_public_key: bytes | None = None) -> list[VerifyResult]:
    """Check files for the synthaug watermark, provenance record and (with the ``c2pa`` extra)
    C2PA Content Credentials.

    Parameters
    ----------
    paths : path or list of paths
        Files (PNG, JPEG, TIFF, BMP, WebP, DICOM, ``.npy``/``.npz``) or folders, searched
        recursively for those.
    key : str or bytes, default=None
        Watermark and HMAC key; ``None``: ``$SYNTHAUG_WATERMARK_KEY`` if set, else the public
        default key.
    fpr : float, default=1e-6
        False-positive rate of the watermark test (see :func:`synthaug.provenance.detect`).
    ed25519_public_key : bytes, default=None
        Require Ed25519-signed records to be signed by this key (32 raw bytes).

    Returns
    -------
    results : list of VerifyResult
        One per file, in the order found.

    Raises
    ------
    FileNotFoundError
        If a path does not exist.
    """
    results = []
    for path in _collect(paths):
        try:
            pixels, embedded, data, stack = _read(path)
        except Exception as exc:  # PIL, numpy and pydicom raise many kinds for a bad file
            # Files are read once into memory, so Pillow's messages name a BytesIO object: name the file.
            reason = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", str(path), str(exc))
            results.append(VerifyResult(str(path), False, None, "none", error=f"{type(exc).__name__}: {reason}"))
            continue
        status, rec = _record_status(path, pixels, embedded, key, ed25519_public_key)
        wm, error = None, ""
        try:
            if pixels.dtype.kind in "uif" and stack:
                wm = _detect_stack(pixels, key, fpr)
            elif pixels.dtype.kind in "uif" and path.suffix.lower() in IMAGE_SUFFIXES | DICOM_SUFFIXES \
                    and pixels.ndim in (2, 3):
                wm = detect([pixels], key, fpr=fpr)[0]
        except ValueError as exc:  # pixels of a shape no image has (e.g. 5 channels): say so, go on
            error = f"no watermark test: {exc}"
        credentials = _content_credentials(path, data)
        # A damaged record in the file's own synthaug carrier (PNG chunk, DICOM private block)
        # still says synthaug wrote it; a damaged sidecar could be any tool's provenance.json.
        carries_record = status not in ("none", "unreadable") or (status == "unreadable" and embedded is not None)
        # A C2PA manifest declaring the file made by a trained model counts, whoever signed it.
        synthetic = (bool(wm is not None and wm.detected) or carries_record
                     or (credentials is not None and (credentials.synthaug_record is not None
                                                      or credentials.generated_by_ai)))
        results.append(VerifyResult(str(path), synthetic, wm, status, rec, error=error,
                                    content_credentials=credentials))
    return results
