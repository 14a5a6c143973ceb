"""Signed provenance records: what made a synthetic output, bound to the output's pixels.

A record is a JSON object: the generator's class, parameters and model hash, the training
data's fingerprint, the seed, the synthaug version, the UTC time, the watermark's scheme, key id
and payload, and the SHA-256 of each output's pixels. It is signed with HMAC-SHA256 under the
watermark key (the public default key unless a private one is set) and, optionally, with an
Ed25519 private key (needs the ``cryptography`` package). Records travel in PNG text chunks, in
sidecar JSON files and, for DICOM, in the tags :func:`dicom_tags` returns.

Changing a record's text breaks its signature; changing an output's pixels breaks the match with
the hash the record holds. With the public default key anyone can also *make* a valid HMAC
signature: it proves integrity against accidents, not origin. Use a private key, or Ed25519 with
a pinned public key, to prove who made an output.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from synthaug.provenance.watermark import SCHEME, key_id, resolve_key

FORMAT = "synthaug-provenance/1"
PNG_KEY = "synthaug-provenance"
SIDECAR_NAME = "provenance.json"
# DICOM: a private block of group 0x0011 reserved by the creator "synthaug", holding the record
# as UT text, plus a human-readable Derivation Description (0008,2111).
DICOM_PRIVATE_GROUP = 0x0011
DICOM_PRIVATE_CREATOR = "synthaug"

RECORD_STATUSES = ("valid", "image-modified", "invalid-signature", "unknown-key", "unsigned", "unreadable", "none")


# -- hashes ---------------------------------------------------------------------------------------
def _canonical_array(array) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]  # a (H, W, 1) image is written and read back as (H, W)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return np.ascontiguousarray(array)


def content_hash(array) -> str:
    """``"sha256:<hex>"`` of an array's dtype, shape and values (what a lossless file decodes to)."""
    array = _canonical_array(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.data if array.size else b"")  # hashes the buffer without a copy
    return "sha256:" + digest.hexdigest()


def data_fingerprint(X, y=None) -> str:
    """``"sha256:<hex>"`` identifying a training set (its values and, if given, its labels)."""
    digest = hashlib.sha256(content_hash(X).encode())
    if y is not None:
        y = np.asarray(y)
        digest.update(content_hash(y.astype(str) if y.dtype == object else y).encode())
    return "sha256:" + digest.hexdigest()


def model_fingerprint(estimator) -> str:
    """``"sha256:<hex>"`` of a fitted generator: its class, parameters and network weights.

    The same fitted model (also after ``save``/``load`` or pickling) gives the same fingerprint.
    """
    digest = hashlib.sha256(type(estimator).__name__.encode())
    digest.update(_canonical_json(estimator.get_params(deep=False)))
    model = getattr(estimator, "model_", None)
    for weight in ([] if model is None else model.get_weights()):
        digest.update(content_hash(weight).encode())
    return "sha256:" + digest.hexdigest()


def payload_for(model_hash: str) -> int:
    """The 32-bit watermark payload that links an image to its model: the hash's first 8 hex digits."""
    return int(model_hash.split(":", 1)[-1][:8], 16)


# -- building and signing -------------------------------------------------------------------------
def _canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False,
                      default=str).encode("ascii")


def _jsonable(obj):
    """The object as JSON would give it back (tuples become lists, unknown objects strings)."""
    return json.loads(_canonical_json(obj))


def build_record(estimator=None, *, seed=None, outputs=None, watermark_payload: int | None = None,
                 watermarked: bool = True, zero_bit: bool = False, key: str | bytes | None = None,
                 extra: dict | None = None) -> dict:
    """An unsigned provenance record.

    Parameters
    ----------
    estimator : fitted GenerativeEstimator, default=None
        The generator; its class, parameters, model hash and training-data fingerprint go in.
    seed : int or None, default=None
        The ``random_state`` the outputs were generated with.
    outputs : list of dict, default=None
        ``{"name": ..., "sha256": content_hash(array)}`` per output.
    watermark_payload : int, default=None
        The payload embedded in the images; by default (watermarked outputs of an estimator)
        the first 32 bits of the model hash.
    watermarked : bool, default=True
        Whether the outputs carry a pixel watermark (False for tabular data and small images).
    zero_bit : bool, default=False
        Whether that watermark carries no payload (``generate``'s marks on images under 192×192,
        see :func:`synthaug.provenance.generated.carries_payload`).
    key : str or bytes, default=None
        Watermark key, only to record its public key id (the key itself never goes in).
    extra : dict, default=None
        More JSON-serialisable fields, kept under ``"extra"``.

    Returns
    -------
    record : dict
    """
    import synthaug

    record = {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "synthaug_version": synthaug.__version__,
        "seed": seed,
    }
    if estimator is not None:
        model_hash = model_fingerprint(estimator)
        record["generator"] = {
            "class": type(estimator).__name__,
            "params": estimator.get_params(deep=False),
            "model_sha256": model_hash,
        }
        record["training_data_sha256"] = getattr(estimator, "data_fingerprint_", None)
        if watermark_payload is None and watermarked and not zero_bit:
            watermark_payload = payload_for(model_hash)
    record["watermark"] = {
        "scheme": SCHEME if watermarked else None,
        "key_id": key_id(key),
        "payload": None if watermark_payload is None else f"{watermark_payload:08x}",
    }
    if outputs is not None:
        record["outputs"] = list(outputs)
    if extra:
        record["extra"] = extra
    return _jsonable(record)


def _unsigned_bytes(record: dict) -> bytes:
    return _canonical_json({k: v for k, v in record.items() if k != "signature"})


def _load_ed25519(private_key):
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("Ed25519 signatures need the 'cryptography' package: pip install cryptography") from None
    if isinstance(private_key, (bytes, bytearray)):
        return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(private_key))
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key
    raise TypeError("ed25519_private_key must be 32 raw bytes or a cryptography Ed25519PrivateKey; "
                    f"got {type(private_key).__name__}")


def sign_record(record: dict, key: str | bytes | None = None, *, ed25519_private_key=None) -> dict:
    """A copy of ``record`` with its ``"signature"``: HMAC-SHA256 under the key, optionally Ed25519.

    Parameters
    ----------
    record : dict
        A record from :func:`build_record` (an existing signature is replaced).
    key : str or bytes, default=None
        HMAC key; ``None``: ``$SYNTHAUG_WATERMARK_KEY`` if set, else the public default key.
        Only its key id is written.
    ed25519_private_key : bytes or cryptography Ed25519PrivateKey, default=None
        Also sign with this private key; the record then carries the matching public key.

    Returns
    -------
    signed : dict
    """
    record = _jsonable({k: v for k, v in record.items() if k != "signature"})
    message = _unsigned_bytes(record)
    key_bytes = resolve_key(key)
    signature = {"hmac-sha256": {"key_id": key_id(key_bytes),
                                 "value": hmac.new(key_bytes, message, hashlib.sha256).hexdigest()}}
    if ed25519_private_key is not None:
        from cryptography.hazmat.primitives import serialization

        private = _load_ed25519(ed25519_private_key)
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        signature["ed25519"] = {"public_key": base64.b64encode(public).decode(),
                                "value": base64.b64encode(private.sign(message)).decode()}
    record["signature"] = signature
    return record


def verify_record(record: dict, key: str | bytes | None = None, *, ed25519_public_key=None) -> str:
    """Check a record's signatures.

    Parameters
    ----------
    record : dict
    key : str or bytes, default=None
        HMAC key, resolved as for :func:`sign_record`.
    ed25519_public_key : bytes, default=None
        Pin the Ed25519 signer: the record must carry an Ed25519 signature by this key (32 raw
        bytes); a record with only an HMAC, or signed by another key, is ``"invalid-signature"``.
        Without it an Ed25519 signature is checked against the public key the record carries,
        which shows integrity but not who signed.

    Returns
    -------
    status : str
        ``"valid"``; ``"invalid-signature"`` (the record was changed, or a pinned Ed25519 key did
        not sign it); ``"unknown-key"`` (HMAC made under another key: its key id differs);
        ``"unsigned"``; ``"unreadable"`` (not a synthaug record).
    """
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return "unreadable"
    signature = record.get("signature")
    if not isinstance(signature, dict) or not signature:
        return "unsigned"
    message = _unsigned_bytes(record)
    checked = False
    mac = signature.get("hmac-sha256")
    if mac is not None:
        key_bytes = resolve_key(key)
        if not isinstance(mac, dict) or not isinstance(mac.get("value"), str):
            return "invalid-signature"
        expected = hmac.new(key_bytes, message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, mac["value"]):
            return "unknown-key" if mac.get("key_id") != key_id(key_bytes) else "invalid-signature"
        checked = True
    ed = signature.get("ed25519")
    if ed is None and ed25519_public_key is not None:
        return "invalid-signature"  # the pinned signer did not sign it (an HMAC anyone with the key can make)
    if ed is not None:
        try:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives.asymmetric import ed25519
        except ImportError:
            if ed25519_public_key is not None:
                raise ImportError("checking a pinned Ed25519 signer needs the cryptography package "
                                  "(pip install cryptography)") from None
            return "valid" if checked else "unsigned"  # cannot check Ed25519 here; say what was checked
        try:
            public = base64.b64decode(ed["public_key"], validate=True)
            if ed25519_public_key is not None and public != bytes(ed25519_public_key):
                return "invalid-signature"
            ed25519.Ed25519PublicKey.from_public_bytes(public).verify(base64.b64decode(ed["value"]), message)
        except (InvalidSignature, ValueError, KeyError, TypeError):
            return "invalid-signature"
        checked = True
    return "valid" if checked else "unsigned"


def check_output(record: dict, array, name: str | None = None) -> bool:
    """Whether ``array`` is an output the record lists (by pixel hash; by name too if given)."""
    digest = content_hash(array)
    entries = record.get("outputs") or []
    if "output" in record:
        entries = [record["output"], *entries]
    return any(isinstance(e, dict) and e.get("sha256") == digest and (name is None or e.get("name") == name)
               for e in entries)


# -- carriers: PNG text chunks, sidecar JSON, DICOM tags ------------------------------------------
def png_info(record: dict):
    """A Pillow ``PngInfo`` holding the record in a compressed text chunk named ``synthaug-provenance``."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PNG_KEY, _canonical_json(record).decode("ascii"), zip=True)
    return info


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_record_text(text: str | bytes) -> dict:
    """A record from its JSON text; ``{}`` (an unreadable record) for text that is not a JSON
    object, or that holds NaN/Infinity (Python's json reads them; no signer writes them)."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):  # JSONDecodeError is a ValueError
        return {}
    return value if isinstance(value, dict) else {}


def read_png_record(path) -> dict | None:
    """The record in a PNG file's text chunks, ``None`` if it has none.

    Raises
    ------
    ValueError
        If the chunk is there but is not JSON.
    """
    from PIL import Image

    with Image.open(path) as img:
        text = getattr(img, "text", {}).get(PNG_KEY)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the {PNG_KEY} text chunk is not JSON ({exc})") from None


def sidecar_bytes(record: dict) -> bytes:
    """The record as the bytes of a sidecar JSON file (indented, newline-terminated)."""
    return (json.dumps(record, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def find_sidecar_record(path) -> tuple[dict | None, str | None]:
    """The sidecar record that lists ``path`` and the name it lists it under.

    Looks for ``<file>.provenance.json`` beside the file, then ``provenance.json`` in its folder
    and the folder above (class sub-folders), whose ``outputs`` name the file by relative path.
    Returns ``(None, None)`` if there is none; an unreadable sidecar gives ``({}, None)``.
    """
    path = Path(os.path.abspath(path))  # "." has no parent to look in; symbolic links are kept
    own = path.with_name(path.name + ".provenance.json")
    candidates = [(own, None)] + [(folder / SIDECAR_NAME, path.relative_to(folder).as_posix())
                                   for folder in (path.parent, path.parent.parent)]
    for sidecar, name in candidates:
        if not sidecar.is_file():
            continue
        try:
            record = parse_record_text(sidecar.read_text(encoding="utf-8"))
        except OSError:
            return {}, None
        if name is None:
            return record, None
        if not record:
            continue  # a provenance.json of another tool (or a damaged one) does not list this file
        outputs = record.get("outputs") if isinstance(record.get("outputs"), list) else []
        if any(isinstance(e, dict) and e.get("name") == name for e in outputs):
            return record, name
    return None, None


def dicom_tags(record: dict) -> list[tuple[tuple[int, int], str, str]]:
    """DICOM elements carrying a record: ``[((group, element), VR, value), ...]``.

    Ready for pydicom: ``for tag, vr, value in dicom_tags(rec): ds.add_new(tag, vr, value)``.
    Derivation Description (0008,2111) says in words that the image is synthetic; the private
    block ``(0011,0010) = "synthaug"`` reserves elements 0x10xx, of which (0011,1010) holds the
    signed record as JSON (UT). Read it back with :func:`record_from_dicom_text`.
    """
    generator = (record.get("generator") or {}).get("class", "a generator")
    description = (f"SYNTHETIC image generated by synthaug {record.get('synthaug_version', '')} ({generator}); "
                   f"provenance record in private tag (0011,1010)")[:1024]
    return [
        ((0x0008, 0x2111), "ST", description),
        ((DICOM_PRIVATE_GROUP, 0x0010), "LO", DICOM_PRIVATE_CREATOR),
        ((DICOM_PRIVATE_GROUP, 0x1010), "UT", _canonical_json(record).decode("ascii")),
    ]


def record_from_dicom_text(text: str | bytes) -> dict:
    """The record held in the (0011,1010) value written from :func:`dicom_tags`."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    return json.loads(text.rstrip("\x00 "))


def read_dicom_record(ds) -> dict | None:
    """The record in a pydicom dataset's synthaug private block, wherever the block was reserved
    (another vendor may hold (0011,0010)); ``None`` without one, ``{}`` for a damaged one."""
    try:
        element = ds.private_block(DICOM_PRIVATE_GROUP, DICOM_PRIVATE_CREATOR)[0x10]
    except KeyError:  # no synthaug block, or no record element in it
        return None
    value = element.value
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return parse_record_text(value.rstrip("\x00 ")) if isinstance(value, str) else {}
