"""Provenance for synthetic data: a keyed invisible watermark for images and signed records.

- :func:`embed` / :func:`detect`: the watermark (:mod:`synthaug.provenance.watermark`).
- :func:`build_record`, :func:`sign_record`, :func:`verify_record` and the PNG / sidecar / DICOM
  carriers (:mod:`synthaug.provenance.record`).
- :func:`verify`: files and folders, by watermark and record (:mod:`synthaug.provenance.verify`).

Keys: ``key=`` or ``$SYNTHAUG_WATERMARK_KEY``, else the public :data:`DEFAULT_KEY`, with which
anyone can detect synthaug's mark and anyone can also forge it. Keys never go into outputs; records
carry only a key id.

This package imports only numpy, SciPy and Pillow (never TensorFlow).
"""
from synthaug.provenance.record import (
    build_record,
    check_output,
    content_hash,
    data_fingerprint,
    dicom_tags,
    model_fingerprint,
    png_info,
    read_png_record,
    record_from_dicom_text,
    sign_record,
    verify_record,
)
from synthaug.provenance.verify import VerifyResult, verify
from synthaug.provenance.watermark import (
    DEFAULT_FPR,
    DEFAULT_KEY,
    KEY_ENV,
    MIN_SIZE,
    WatermarkResult,
    detect,
    embed,
    key_id,
)

__all__ = [
    "embed", "detect", "verify", "WatermarkResult", "VerifyResult",
    "build_record", "sign_record", "verify_record", "check_output", "content_hash", "data_fingerprint",
    "model_fingerprint", "png_info", "read_png_record", "dicom_tags", "record_from_dicom_text",
    "DEFAULT_KEY", "KEY_ENV", "DEFAULT_FPR", "MIN_SIZE", "key_id",
]
