"""C2PA Content Credentials: signed manifests in generated PNGs, read back, tampering, CLI."""
import io
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("c2pa")
pytest.importorskip("cryptography")

from synthaug.cli import cli  # noqa: E402
from synthaug.io import encode_png, write_samples  # noqa: E402
from synthaug.provenance import build_record, content_hash, verify  # noqa: E402
from synthaug.provenance import content_credentials as cc  # noqa: E402
from synthaug.provenance.record import png_info, read_png_record, sign_record, verify_record  # noqa: E402

USER_KEY = "c2pa test key"


@pytest.fixture(scope="module")
def signer():
    return cc.self_signed_credentials()


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (48, 40), dtype=np.uint8)


def test_signed_png_carries_an_ai_created_manifest_with_the_record(signer, tmp_path):
    image = _image()
    # lists of numbers, as a generator's parameters hold them, once came back as byte strings
    params = {"hidden_units": [512, 512], "conv_filters": [16, 32], "weights": [1.5, 2]}
    record = sign_record({**build_record(seed=5), "generator": {"class": "VAE", "params": params},
                          "output": {"name": "a.png", "sha256": content_hash(image)}}, USER_KEY)
    png = encode_png(image, png_info(record))
    signed = cc.sign_png(png, signer, record=record, title="a.png")
    # The pixels and synthaug's own record chunk are untouched.
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(signed))), image)
    (tmp_path / "a.png").write_bytes(signed)
    assert read_png_record(tmp_path / "a.png") == record
    found = cc.read(signed, "image/png")
    assert found.valid and found.state == "Valid" and found.failures == ()
    assert found.generated_by_ai and found.digital_source_type == cc.TRAINED_ALGORITHMIC_MEDIA
    assert not found.signer_trusted  # a self-made CA is on nobody's trust list
    assert found.synthaug_record == json.loads(json.dumps(record))
    assert verify_record(found.synthaug_record, USER_KEY) == "valid"
    assert cc.read(tmp_path / "a.png") == found
    assert cc.read(png, "image/png") is None  # no manifest in the unsigned file


def test_changed_pixels_invalidate_the_manifest(signer):
    signed = bytearray(cc.sign_png(encode_png(_image()), signer))
    at = signed.find(b"IDAT") + 20
    signed[at] ^= 0xFF
    found = cc.read(bytes(signed), "image/png")
    assert not found.valid and found.state == "Invalid"
    assert "assertion.dataHash.mismatch" in found.failures


def test_write_samples_and_verify(signer, tmp_path):
    X = np.stack([_image(i) for i in range(3)])
    record = build_record(seed=0, watermarked=False)
    paths = write_samples(X, tmp_path / "out", record=record, key=USER_KEY, c2pa_signer=signer)
    results = verify(tmp_path / "out", key=USER_KEY)
    assert [r.path for r in results] == [str(p) for p in paths]
    for result, image in zip(results, X):
        assert result.synthetic and result.record_status == "valid"
        assert result.content_credentials.valid and result.content_credentials.generated_by_ai
        assert result.content_credentials.synthaug_record["output"]["sha256"] == content_hash(image)
        assert result.to_dict()["c2pa"] == "Valid"


def test_verify_reads_each_image_file_once(signer, tmp_path, monkeypatch):
    """Pillow and the C2PA reader get the same bytes: one read per image, no second open."""
    import builtins

    X = np.stack([_image(i) for i in range(2)])
    paths = write_samples(X, tmp_path / "out", record=build_record(seed=0, watermarked=False), key=USER_KEY,
                          c2pa_signer=signer)
    images = {str(p.resolve()) for p in paths}
    reads = []
    read_bytes, real_open = Path.read_bytes, builtins.open

    def counting_read_bytes(self):
        reads.append(str(Path(self).resolve()))
        return read_bytes(self)

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, Path)):
            reads.append(str(Path(file).resolve()))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(Path, "read_bytes", counting_read_bytes)
    monkeypatch.setattr(builtins, "open", counting_open)
    results = verify(tmp_path / "out", key=USER_KEY)
    assert all(r.content_credentials.valid for r in results)
    assert sorted(r for r in reads if r in images) == sorted(images)


def test_verify_counts_another_tools_ai_manifest_and_reports_a_damaged_one(signer, tmp_path):
    # A manifest without synthaug's record that still declares trainedAlgorithmicMedia (as another
    # generator's would), on an image with no watermark and no synthaug record: synthetic.
    (tmp_path / "other.png").write_bytes(cc.sign_png(encode_png(_image(1)), signer))
    # A manifest whose JUMBF header is corrupted, in an otherwise valid PNG (the chunk's CRC
    # recomputed, so the image still reads): c2pa-python cannot parse it.
    damaged = bytearray(cc.sign_png(encode_png(_image(2)), signer))
    at = damaged.find(b"caBX")
    length = int.from_bytes(damaged[at - 4:at], "big")
    damaged[at + 8] ^= 0xFF
    damaged[at + 4 + length:at + 8 + length] = zlib.crc32(damaged[at:at + 4 + length]).to_bytes(4, "big")
    (tmp_path / "damaged.png").write_bytes(bytes(damaged))
    (tmp_path / "plain.png").write_bytes(encode_png(_image(3)))
    results = {Path(r.path).name: r for r in verify(tmp_path)}
    other, broken, plain = results["other.png"], results["damaged.png"], results["plain.png"]
    assert other.synthetic and other.record_status == "none" and not other.watermark.detected
    assert other.content_credentials.generated_by_ai and other.content_credentials.synthaug_record is None
    assert broken.content_credentials.state == "Invalid" and not broken.content_credentials.valid
    assert broken.content_credentials.failures[0].startswith("unreadable:")
    assert not broken.synthetic  # an unreadable manifest declares nothing
    assert not plain.synthetic and plain.content_credentials is None


def test_tabular_samples_cannot_carry_c2pa_and_nothing_is_written(signer, tmp_path):
    with pytest.raises(ValueError, match="C2PA manifests go into PNG images"):
        write_samples(np.zeros((5, 3), np.float32), tmp_path / "tab", record=build_record(seed=0),
                      c2pa_signer=signer)
    assert not (tmp_path / "tab").exists()


def test_cli_without_c2pa_python_says_how_to_install(signer, tiny_image_vae, tmp_path, monkeypatch):
    _, model_path = tiny_image_vae
    cert, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.write_bytes(signer.cert_chain)
    key.write_bytes(signer.private_key)
    monkeypatch.setattr(cc, "available", lambda: False)
    result = CliRunner().invoke(cli, ["generate", str(model_path), "-n", "1", "-o", str(tmp_path / "out"),
                                      "--c2pa-cert", str(cert), "--c2pa-key", str(key)])
    assert result.exit_code == 1 and 'pip install "synthaug[c2pa]"' in result.output
    assert not (tmp_path / "out").exists()


def test_signer_validation(tmp_path):
    with pytest.raises(ValueError, match="PEM"):
        cc.C2paSigner(b"not a certificate", b"-----BEGIN PRIVATE KEY-----")
    with pytest.raises(ValueError, match="alg"):
        cc.C2paSigner(b"-----BEGIN CERTIFICATE-----", b"-----BEGIN PRIVATE KEY-----", alg="md5")
    with pytest.raises(ValueError, match="PNG"):
        cc.sign_png(b"GIF89a", cc.self_signed_credentials())
    one, other = cc.self_signed_credentials(), cc.self_signed_credentials()
    assert one.check() is one
    with pytest.raises(ValueError, match="cannot sign C2PA manifests"):
        cc.C2paSigner(one.cert_chain, other.private_key).check()  # key of another certificate


def test_cli_generate_signs_c2pa_and_verify_shows_it(signer, tiny_image_vae, tmp_path):
    _, model_path = tiny_image_vae
    cert, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.write_bytes(signer.cert_chain)
    key.write_bytes(signer.private_key)
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(cli, ["generate", str(model_path), "-n", "2", "-o", str(out), "-q",
                                 "--c2pa-cert", str(cert), "--c2pa-key", str(key)])
    assert result.exit_code == 0, result.output
    pngs = sorted(out.rglob("synthetic_*.png"))
    assert len(pngs) == 2 and all(cc.read(p).valid for p in pngs)
    table = runner.invoke(cli, ["verify", str(out)])
    assert table.exit_code == 3, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[-1] == "c2pa"
    assert [line.split()[-1] for line in lines if "synthetic_" in line] == ["valid", "valid"]
    # Both files or neither, checked before anything is written.
    half = runner.invoke(cli, ["generate", str(model_path), "-n", "1", "-o", str(tmp_path / "o2"),
                               "--c2pa-cert", str(cert)])
    assert half.exit_code == 2 and "--c2pa-cert and --c2pa-key go together" in half.output
    assert not (tmp_path / "o2").exists()
    mismatched = tmp_path / "other-key.pem"
    mismatched.write_bytes(cc.self_signed_credentials().private_key)
    bad = runner.invoke(cli, ["generate", str(model_path), "-n", "1", "-o", str(tmp_path / "o3"),
                              "--c2pa-cert", str(cert), "--c2pa-key", str(mismatched)])
    assert bad.exit_code == 2 and "cannot sign C2PA manifests" in bad.output
    assert not (tmp_path / "o3").exists()
    # A key file that is not PEM at all, and one that looks like PEM but holds no key.
    not_pem = tmp_path / "not-a-key.pem"
    not_pem.write_bytes(b"\x00\x01 not a key\n")
    broken = tmp_path / "broken-key.pem"
    broken.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    for key_file, message in [(not_pem, "private_key must be PEM bytes"), (broken, "cannot sign C2PA manifests")]:
        out = tmp_path / f"o-{key_file.stem}"
        refused = runner.invoke(cli, ["generate", str(model_path), "-n", "1", "-o", str(out),
                                      "--c2pa-cert", str(cert), "--c2pa-key", str(key_file)])
        assert refused.exit_code == 2 and message in refused.output, refused.output
        assert "--c2pa-cert/--c2pa-key" in refused.output and not out.exists()


def test_cli_augment_signs_synthetic_pngs_only(signer, tmp_path):
    from skimage.data import camera

    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        Image.fromarray(np.ascontiguousarray(camera()[i * 64:i * 64 + 40, 100:140])).save(images / f"c{i}.png")
    cert, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.write_bytes(signer.cert_chain)
    key.write_bytes(signer.private_key)
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(cli, ["augment", str(images), "-o", str(out), "-n", "2", "--epochs", "1", "-q",
                                 "--c2pa-cert", str(cert), "--c2pa-key", str(key)])
    assert result.exit_code == 0, result.output
    assert all(cc.read(p).generated_by_ai for p in out.rglob("synthetic_*.png"))
    assert all(cc.read(p) is None for p in out.rglob("real_*.png"))  # real images are not claimed as AI-made
    npy = runner.invoke(cli, ["augment", str(images), "-o", str(tmp_path / "o2"), "--format", "npy",
                              "--c2pa-cert", str(cert), "--c2pa-key", str(key)])
    assert npy.exit_code == 2 and "sign PNG files" in npy.output
