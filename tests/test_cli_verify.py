"""`synthaug verify`: table, JSON, exit codes, keys, and the generate → verify round trip."""
import base64
import io
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from synthaug.cli import cli
from synthaug.io import write_samples
from synthaug.provenance import KEY_ENV, build_record, embed

skimage_data = pytest.importorskip("skimage.data")


def test_help_and_verify_do_not_import_tensorflow(tmp_path):
    Image.fromarray(skimage_data.camera()[:64, :64]).save(tmp_path / "a.png")
    code = (
        "import sys; from click.testing import CliRunner; from synthaug.cli import cli; "
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0 and 'verify' in r.output, r.output; "
        "r = CliRunner().invoke(cli, ['verify', '--help']); assert r.exit_code == 0 and 'Exit status' in r.output; "
        f"r = CliRunner().invoke(cli, ['verify', {str(tmp_path)!r}]); assert r.exit_code == 0, r.output; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _jpeg_bytes(image, quality=50):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """Marked PNGs with records, a marked JPEG without one, unmarked real images, a tiny image."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    root = tmp_path / "files"
    marked = embed(np.stack([skimage_data.astronaut()[:256, :256], skimage_data.astronaut()[256:, 256:]]),
                   payload=0x5EED)
    write_samples(marked, root / "generated", record=build_record(seed=0, watermark_payload=0x5EED))
    (root / "shared").mkdir()
    (root / "shared" / "reposted.jpg").write_bytes(_jpeg_bytes(marked[0]))
    Image.fromarray(skimage_data.camera()).save(root / "shared" / "camera.png")
    Image.fromarray(skimage_data.coffee()).save(root / "shared" / "coffee.jpg", quality=90)
    Image.fromarray(skimage_data.camera()[:16, :16]).save(root / "shared" / "tiny.png")
    return root


def test_table_and_exit_code_3_when_synthetic_files_are_found(folder):
    result = CliRunner().invoke(cli, ["verify", str(folder)])
    assert result.exit_code == 3, result.output
    rows = {line.split()[0].rsplit("/", 1)[-1]: line.split() for line in result.output.splitlines()[1:] if "/" in line}
    assert rows["synthetic_0.png"][1:2] == ["yes"] and rows["synthetic_0.png"][-2:] == ["00005eed", "valid"]
    assert rows["reposted.jpg"][1] == "yes" and rows["reposted.jpg"][-1] == "none"
    assert float(rows["reposted.jpg"][2]) <= 1e-6
    assert rows["camera.png"][1] == "no" and float(rows["camera.png"][2]) > 1e-3
    assert rows["coffee.jpg"][1] == "no"
    assert rows["tiny.png"][1:3] == ["no", "too"]  # "too small": no pixel watermark below 32×32
    assert "3 of 6 files synthetic" in result.output


def test_json_output(folder):
    result = CliRunner().invoke(cli, ["verify", "--json", str(folder / "shared"), str(folder / "generated")])
    assert result.exit_code == 3
    entries = {os.path.basename(e["path"]): e for e in json.loads(result.output)}
    assert entries["synthetic_1.png"]["record_status"] == "valid"
    assert entries["synthetic_1.png"]["payload"] == "00005eed" and entries["synthetic_1.png"]["watermark_detected"]
    assert entries["camera.png"]["synthetic"] is False and entries["camera.png"]["record_status"] == "none"
    assert "smaller than 32" in entries["tiny.png"]["watermark_note"]


def test_exit_code_0_when_nothing_synthetic(folder):
    shared = folder / "shared"
    result = CliRunner().invoke(cli, ["verify", str(shared / "camera.png"), str(shared / "coffee.jpg")])
    assert result.exit_code == 0, result.output
    assert "0 of 2 files synthetic" in result.output


def test_unreadable_file_exit_code_1(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = CliRunner().invoke(cli, ["verify", str(tmp_path)])
    assert result.exit_code == 1
    assert "could not read" in result.stderr and "broken.png" in result.stderr
    (tmp_path / "noise.png").write_bytes(b"random bytes, not an image")
    result = CliRunner().invoke(cli, ["verify", str(tmp_path / "noise.png")])
    assert result.exit_code == 1 and "BytesIO" not in result.stderr
    assert f"cannot identify image file {tmp_path / 'noise.png'}" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["verify", str(empty)])
    assert result.exit_code == 1 and "found no image" in result.output + result.stderr


def test_private_key_file(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    key = "our private watermark key"
    X = embed(skimage_data.camera()[None, :256, :256], key=key, payload=1)
    write_samples(X, tmp_path / "out", record=build_record(seed=0, key=key), key=key)
    (tmp_path / "key.txt").write_text(key + "\n")
    png = str(tmp_path / "out" / "synthetic_0.png")
    public = CliRunner().invoke(cli, ["verify", "--json", png])
    (entry,) = json.loads(public.output)
    assert not entry["watermark_detected"] and entry["record_status"] == "unknown-key"
    assert public.exit_code == 3  # a synthaug record is there, even if its key is not ours
    private = CliRunner().invoke(cli, ["verify", "--json", "--key-file", str(tmp_path / "key.txt"), png])
    (entry,) = json.loads(private.output)
    assert entry["watermark_detected"] and entry["record_status"] == "valid" and entry["payload"] == "00000001"
    monkeypatch.setenv(KEY_ENV, key)
    assert json.loads(CliRunner().invoke(cli, ["verify", "--json", png]).output)[0]["record_status"] == "valid"


def test_a_pinned_ed25519_signer(tmp_path):
    ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    from cryptography.hazmat.primitives import serialization

    from synthaug.provenance import content_hash, png_info, sign_record

    ours, theirs = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    image = skimage_data.camera()[:64, :64]
    record = {**build_record(seed=0), "output": {"name": "a.png", "sha256": content_hash(image)}}
    Image.fromarray(image).save(tmp_path / "ours.png", pnginfo=png_info(sign_record(record, ed25519_private_key=ours)))
    Image.fromarray(image).save(tmp_path / "hmac_only.png", pnginfo=png_info(sign_record(record)))
    pem = ours.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "ours.pem").write_bytes(pem)
    raw = theirs.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    (tmp_path / "theirs.b64").write_text(base64.b64encode(raw).decode() + "\n")

    def statuses(*options):
        result = CliRunner().invoke(cli, ["verify", "--json", *options, str(tmp_path / "ours.png"),
                                          str(tmp_path / "hmac_only.png")])
        return [entry["record_status"] for entry in json.loads(result.output)]

    assert statuses() == ["valid", "valid"]
    assert statuses("--ed25519-public-key", str(tmp_path / "ours.pem")) == ["valid", "invalid-signature"]
    assert statuses("--ed25519-public-key", str(tmp_path / "theirs.b64")) == ["invalid-signature"] * 2
    (tmp_path / "bad.key").write_text("not a key")
    bad = CliRunner().invoke(cli, ["verify", "--ed25519-public-key", str(tmp_path / "bad.key"), str(tmp_path)])
    assert bad.exit_code == 2 and "is not an Ed25519 public key" in bad.output


def test_generate_then_verify(tiny_image_vae, tmp_path, monkeypatch):
    from synthaug.provenance import model_fingerprint

    monkeypatch.delenv(KEY_ENV, raising=False)
    vae, model = tiny_image_vae
    out = tmp_path / "synthetic"
    assert CliRunner().invoke(cli, ["generate", str(model), "-n", "8", "-o", str(out), "--seed", "1"]).exit_code == 0
    result = CliRunner().invoke(cli, ["verify", "--json", str(out)])
    assert result.exit_code == 3
    entries = json.loads(result.output)
    assert len(entries) == 9  # 8 samples and grid.png; provenance.json is not an image
    assert all(e["synthetic"] and e["record_status"] == "valid" and e["record_generator"] == "VAE" for e in entries)
    samples = [e for e in entries if "grid" not in e["path"]]
    assert sum(e["watermark_detected"] for e in samples) >= 6
    sidecar = json.loads((out / "provenance.json").read_text())
    assert sidecar["seed"] == 1 and len(sidecar["outputs"]) == 8
    assert sidecar["generator"]["model_sha256"] == model_fingerprint(vae)
    assert sidecar["training_data_sha256"] == vae.data_fingerprint_
    assert sidecar["extra"] == {"model_file": model.name}


def test_generate_signs_with_ed25519_and_verify_pins_the_signer(tiny_image_vae, tmp_path):
    ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    from cryptography.hazmat.primitives import serialization

    def pem(private):
        return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())

    ours = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "ours.pem").write_bytes(pem(ours))
    (tmp_path / "ours.pub").write_bytes(ours.public_key().public_bytes(serialization.Encoding.Raw,
                                                                       serialization.PublicFormat.Raw))
    _, model = tiny_image_vae
    out = tmp_path / "synthetic"
    generated = CliRunner().invoke(cli, ["generate", str(model), "-n", "4", "-o", str(out), "-q",
                                         "--ed25519-key", str(tmp_path / "ours.pem")])
    assert generated.exit_code == 0, generated.output
    pinned = CliRunner().invoke(cli, ["verify", "--json", "--ed25519-public-key", str(tmp_path / "ours.pub"), str(out)])
    assert [e["record_status"] for e in json.loads(pinned.output)] == ["valid"] * 5  # 4 samples and the grid
    sidecar = json.loads((out / "provenance.json").read_text())
    assert "ed25519" in sidecar["signature"]
    (tmp_path / "bad.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    refused = CliRunner().invoke(cli, ["generate", str(model), "-n", "4", "-o", str(tmp_path / "other"),
                                       "--ed25519-key", str(tmp_path / "bad.pem")])
    assert refused.exit_code == 2 and "is not an Ed25519 private key" in refused.output
    assert not (tmp_path / "other").exists()


def test_generate_digits_then_verify_the_sidecar(tiny_digits_vae, tmp_path):
    _, model = tiny_digits_vae
    out = tmp_path / "digits"
    assert CliRunner().invoke(cli, ["generate", str(model), "-n", "20", "-o", str(out)]).exit_code == 0
    result = CliRunner().invoke(cli, ["verify", "--json", str(out / "samples.npz")])
    (entry,) = json.loads(result.output)
    assert result.exit_code == 3 and entry["record_status"] == "valid"
    # the array's images are tested, but 8×8 digits are too small to carry a watermark
    assert entry["p_value"] == 1.0 and "smaller than 32×32" in entry["watermark_note"]
    sidecar = json.loads((out / "provenance.json").read_text())
    assert sidecar["watermark"]["scheme"] is None  # 8×8 digits: no pixel watermark, the record only


def test_ed25519_key_file_forms(tmp_path):
    """--ed25519-key reads an unencrypted PEM or 32 raw bytes, and names an encrypted or RSA key."""
    pytest.importorskip("cryptography")
    import click
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from synthaug.cli import _ed25519_private_key

    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    (tmp_path / "raw.key").write_bytes(raw)
    loaded = _ed25519_private_key(tmp_path / "raw.key")
    assert loaded.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    (tmp_path / "locked.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")))
    with pytest.raises(click.BadParameter, match="locked.pem is not an Ed25519 private key .*encrypted"):
        _ed25519_private_key(tmp_path / "locked.pem")
    (tmp_path / "rsa.pem").write_bytes(rsa.generate_private_key(65537, 1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(click.BadParameter, match="holds a .*RSAPrivateKey, not an Ed25519 key"):
        _ed25519_private_key(tmp_path / "rsa.pem")
    (tmp_path / "short.key").write_bytes(raw[:31])
    with pytest.raises(click.BadParameter, match="neither a PEM private key nor 32 raw bytes"):
        _ed25519_private_key(tmp_path / "short.key")
