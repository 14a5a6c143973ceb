"""Signed provenance records: signing, tampering, carriers (PNG chunks, sidecar, DICOM), keys."""
import json

import numpy as np
import pytest
from PIL import Image

from synthaug.io import write_samples
from synthaug.provenance import (
    KEY_ENV,
    build_record,
    check_output,
    content_hash,
    data_fingerprint,
    dicom_tags,
    embed,
    key_id,
    model_fingerprint,
    read_png_record,
    record_from_dicom_text,
    sign_record,
    verify,
    verify_record,
)
from synthaug.provenance.record import PNG_KEY, SIDECAR_NAME, payload_for

USER_KEY = "correct horse battery staple"


@pytest.fixture
def record():
    return build_record(seed=3, outputs=[{"name": "a.png", "sha256": content_hash(np.zeros((4, 4), np.uint8))}],
                        watermark_payload=0x1234, extra={"note": "test"})


def test_signed_record_verifies(record):
    signed = sign_record(record, USER_KEY)
    assert verify_record(signed, USER_KEY) == "valid"
    assert signed["signature"]["hmac-sha256"]["key_id"] == key_id(USER_KEY)
    assert signed["format"] == "synthaug-provenance/1" and signed["created"].endswith("Z")
    assert signed["watermark"]["payload"] == "00001234" and signed["seed"] == 3


@pytest.mark.parametrize("edit", [
    lambda r: r.__setitem__("seed", 4),
    lambda r: r["outputs"][0].__setitem__("sha256", "sha256:" + "0" * 64),
    lambda r: r["watermark"].__setitem__("payload", "00001235"),
    lambda r: r.__setitem__("injected", True),
    lambda r: r["signature"]["hmac-sha256"].__setitem__("value", "0" * 64),
])
def test_tampered_record_is_detected(record, edit):
    signed = sign_record(record, USER_KEY)
    edit(signed)
    assert verify_record(signed, USER_KEY) == "invalid-signature"


def test_other_key_unsigned_and_unreadable(record):
    signed = sign_record(record, USER_KEY)
    assert verify_record(signed, "another key") == "unknown-key"
    assert verify_record(signed) == "unknown-key"  # the public default key
    assert verify_record(record) == "unsigned"
    assert verify_record({"format": "something else"}) == "unreadable"
    assert verify_record([1, 2]) == "unreadable"


def test_environment_key(record, monkeypatch):
    monkeypatch.setenv(KEY_ENV, USER_KEY)
    signed = sign_record(record)
    assert verify_record(signed, USER_KEY) == "valid"
    monkeypatch.delenv(KEY_ENV)
    assert verify_record(signed) == "unknown-key"


def test_ed25519(record):
    ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    from cryptography.hazmat.primitives import serialization

    private = ed25519.Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signed = sign_record(record, USER_KEY, ed25519_private_key=private)
    assert verify_record(signed, USER_KEY, ed25519_public_key=public) == "valid"
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert verify_record(signed, USER_KEY, ed25519_public_key=other) == "invalid-signature"
    signed["seed"] = 5
    assert verify_record(signed, USER_KEY, ed25519_public_key=public) == "invalid-signature"
    with pytest.raises(TypeError, match="ed25519_private_key"):
        sign_record(record, USER_KEY, ed25519_private_key="not a key")
    # a pinned signer must have signed: an HMAC alone (anyone holding the key can make one) or a
    # record with its Ed25519 block stripped does not pass the pin
    hmac_only = sign_record(record, USER_KEY)
    assert verify_record(hmac_only, USER_KEY) == "valid"
    assert verify_record(hmac_only, USER_KEY, ed25519_public_key=public) == "invalid-signature"


def test_content_hash_follows_pixels():
    a = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    b = a.copy()
    b[10, 10] += 1
    assert content_hash(a) != content_hash(b)
    assert content_hash(a) == content_hash(a.astype(">u2"))  # byte order does not matter
    assert content_hash(a[..., None]) == content_hash(a)  # (H, W, 1) is written as (H, W)
    assert content_hash(a) != content_hash(a.astype(np.int32))  # the dtype does
    assert data_fingerprint(a, [0, 1]) != data_fingerprint(a, [1, 0]) != data_fingerprint(a)


def _images(n=3, size=96):
    from skimage.data import astronaut

    return embed(np.stack([astronaut()[i * 100:i * 100 + size, :size] for i in range(n)]), key=USER_KEY, payload=0xABCD)


def test_png_chunks_and_sidecar(tmp_path, record):
    X = _images()
    paths = write_samples(X, tmp_path / "out", y=np.array(["a", "b", "a"]), record=record, key=USER_KEY)
    assert [p.relative_to(tmp_path / "out").as_posix() for p in paths] == ["a/synthetic_0.png", "b/synthetic_1.png",
                                                                            "a/synthetic_2.png"]
    rec = read_png_record(paths[1])
    assert rec["output"] == {"name": "b/synthetic_1.png", "sha256": content_hash(X[1])}
    assert verify_record(rec, USER_KEY) == "valid" and check_output(rec, np.asarray(Image.open(paths[1])))
    sidecar = json.loads((tmp_path / "out" / SIDECAR_NAME).read_text())
    assert verify_record(sidecar, USER_KEY) == "valid"
    assert [o["name"] for o in sidecar["outputs"]] == ["a/synthetic_0.png", "b/synthetic_1.png", "a/synthetic_2.png"]
    results = verify(tmp_path / "out", key=USER_KEY)
    assert [r.record_status for r in results] == ["valid"] * 3
    assert all(r.synthetic and r.watermark.detected and r.payload == 0xABCD for r in results)


def test_image_tampering_is_detected(tmp_path, record):
    X = _images(1)
    (path,) = write_samples(X, tmp_path, record=record, key=USER_KEY)
    with Image.open(path) as img:
        text = img.text[PNG_KEY]
        pixels = np.asarray(img).copy()
    pixels[5, 5, 0] ^= 1  # one bit of one pixel
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PNG_KEY, text)
    Image.fromarray(pixels).save(path, pnginfo=info)
    (result,) = verify(path, key=USER_KEY)
    assert result.record_status == "image-modified"
    assert result.synthetic and result.watermark.detected  # the mark survives a bit flip
    # The record's text edited in the file: its signature breaks.
    tampered = json.loads(text)
    tampered["seed"] = 99
    info = PngInfo()
    info.add_text(PNG_KEY, json.dumps(tampered))
    Image.fromarray(np.asarray(X[0])).save(path, pnginfo=info)
    assert verify(path, key=USER_KEY)[0].record_status == "invalid-signature"


def test_tabular_samples_rely_on_the_sidecar(tmp_path, record):
    X = np.random.default_rng(0).normal(size=(10, 3))
    (npz,) = write_samples(X, tmp_path, record=record, key=USER_KEY)
    (result,) = verify(npz, key=USER_KEY)
    assert result.record_status == "valid" and result.synthetic and result.watermark is None
    np.savez(npz, X=X + 1e-9)
    assert verify(npz, key=USER_KEY)[0].record_status == "image-modified"


def test_dicom_tags_round_trip(record):
    signed = sign_record(record, USER_KEY)
    tags = dicom_tags(signed)
    assert tags[0][0] == (0x0008, 0x2111) and tags[0][2].startswith("SYNTHETIC image generated by synthaug")
    assert tags[1] == ((0x0011, 0x0010), "LO", "synthaug")
    assert verify_record(record_from_dicom_text(tags[2][2]), USER_KEY) == "valid"
    pydicom = pytest.importorskip("pydicom")
    ds = pydicom.Dataset()
    for tag, vr, value in tags:
        ds.add_new(tag, vr, value)
    assert verify_record(record_from_dicom_text(ds[0x0011, 0x1010].value), USER_KEY) == "valid"


def test_record_of_a_fitted_generator(tiny_digits_vae, tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import synthaug

    vae, path = tiny_digits_vae
    d = load_digits()
    X_train, _, y_train, _ = train_test_split(d.images, d.target, test_size=0.25, random_state=0, stratify=d.target)
    rec = build_record(vae, seed=0)
    assert rec["generator"]["class"] == "VAE" and rec["generator"]["params"]["latent_dim"] == 4
    assert rec["training_data_sha256"] == data_fingerprint(X_train, y_train)
    assert rec["synthaug_version"] == synthaug.__version__
    # The model hash is stable across save/load, and the payload is its first 32 bits.
    loaded = synthaug.load(path)
    assert model_fingerprint(loaded) == rec["generator"]["model_sha256"]
    assert loaded.data_fingerprint_ == vae.data_fingerprint_
    assert rec["watermark"]["payload"] == f"{payload_for(rec['generator']['model_sha256']):08x}"
    # A zero-bit mark (generated images under 192×192) records no payload, but the same scheme.
    zero = build_record(vae, seed=0, zero_bit=True)
    assert zero["watermark"]["payload"] is None and zero["watermark"]["scheme"] == rec["watermark"]["scheme"]


def test_keys_never_land_in_outputs(tmp_path, record, monkeypatch):
    monkeypatch.setenv(KEY_ENV, USER_KEY)
    X = _images(2)
    write_samples(X, tmp_path, record=record)
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert USER_KEY.encode() not in f.read_bytes()
    assert verify(tmp_path)[0].record_status == "valid"


def _png_with_record_text(path, text):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PNG_KEY, text)
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(path, pnginfo=info)


@pytest.mark.parametrize("text", ["[1, 2, 3]", "42", "null", '{"format": NaN}', '{"format": "synthaug-pro'])
def test_a_damaged_record_chunk_is_unreadable_and_still_marks_the_file(tmp_path, text):
    _png_with_record_text(tmp_path / "a.png", text)
    (result,) = verify(tmp_path / "a.png", key=USER_KEY)
    assert result.record_status == "unreadable" and result.synthetic  # synthaug's own carrier
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["record_status"] == "unreadable"


def test_another_tools_provenance_json_is_ignored_not_a_crash(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "sub" / "a.png")
    (tmp_path / "sub" / SIDECAR_NAME).write_text("[1, 2]")
    (tmp_path / SIDECAR_NAME).write_text('{"outputs": 5}')
    (result,) = verify(tmp_path, key=USER_KEY)
    assert result.record_status == "none" and not result.synthetic


def test_the_sidecar_is_found_whatever_the_path_looks_like(tmp_path, record, monkeypatch):
    X = _images(2)
    write_samples(X, tmp_path / "out", y=np.array(["a", "b"]), record=record, key=USER_KEY)
    for png in (tmp_path / "out").rglob("*.png"):  # re-saved: the text chunks are gone
        Image.open(png).save(png)
    monkeypatch.chdir(tmp_path / "out" / "b")
    for path in ("synthetic_1.png", ".", tmp_path / "out" / "b" / "synthetic_1.png"):
        (result,) = verify(path, key=USER_KEY)
        assert result.record_status == "valid", path


def test_a_dicom_with_another_vendors_private_group_0011(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    (result,) = verify(get_testdata_file("CT_small.dcm"))  # (0011,0010) = GEMS_PATI_01, (0011,1010) an int
    assert result.error == "" and result.record_status == "none" and result.watermark is not None
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    signed = sign_record(build_record(seed=1), USER_KEY)
    block = ds.private_block(0x0011, "synthaug", create=True)  # lands in (0011,0011): GE holds 0010
    block.add_new(0x10, "UT", dicom_tags(signed)[2][2])
    ds.save_as(tmp_path / "ct.dcm")
    assert verify(tmp_path / "ct.dcm", key=USER_KEY)[0].record_status in ("valid", "image-modified")


def test_image_stacks_are_tested_at_the_files_false_positive_rate(tmp_path):
    from skimage.data import astronaut

    grey = astronaut()[..., 1]
    frames = np.stack([grey[i * 64:i * 64 + 96, 100:196] for i in range(5)])
    marked = embed(frames, key=USER_KEY, payload=0xABCD)
    np.save(tmp_path / "marked.npy", marked)
    np.save(tmp_path / "real.npy", frames)
    np.save(tmp_path / "rows.npy", np.random.default_rng(0).normal(size=(10, 3)))
    marked_result, real_result, rows_result = verify([tmp_path / n for n in ("marked.npy", "real.npy", "rows.npy")],
                                                     key=USER_KEY)
    assert marked_result.synthetic and marked_result.payload == 0xABCD
    assert "of 5, the most significant of 5 tested" in marked_result.watermark.message
    assert not real_result.synthetic and real_result.p_value > 1e-6
    assert rows_result.watermark is None  # tabular rows: nothing to test
    pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    multi = get_testdata_file("SC_rgb_rle_2frame.dcm")  # 2 frames of 100×100 RGB
    (result,) = verify(multi)
    assert result.error == "" and result.watermark is not None and not result.synthetic


def test_verify_names_array_files_it_cannot_test(tmp_path):
    np.savez(tmp_path / "empty.npz")
    np.save(tmp_path / "zero.npy", np.zeros((0, 32, 32), dtype=np.uint8))
    empty, zero = verify([tmp_path / "empty.npz", tmp_path / "zero.npy"], key=USER_KEY)
    assert empty.error.endswith("empty.npz holds no arrays") and not empty.synthetic
    assert zero.error == "" and zero.watermark.message == "no images in the stack" and not zero.synthetic
