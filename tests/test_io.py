"""Reading image folders and arrays (synthaug.io.read_data) on real images: formats, depths, sizes."""
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from synthaug.io import read_data, resize_image


@pytest.fixture(scope="module")
def camera():
    return skdata.camera()[::8, ::8]  # 64×64 uint8, a real photograph


def test_png_jpeg_and_16_bit_tiff_are_read_with_their_depth(tmp_path, camera):
    deep = camera.astype(np.uint16) * 257  # the full 16-bit range
    for name, image in (("a.png", camera), ("b.jpg", camera), ("c.tif", deep)):
        (tmp_path / name[0]).mkdir()
        Image.fromarray(image).save(tmp_path / name[0] / name, **({"quality": 95} if name.endswith("jpg") else {}))
        ds = read_data(tmp_path / name[0])
        assert ds.X.shape == (1, 64, 64) and ds.X.dtype == image.dtype and ds.y is None
        if name.endswith("jpg"):  # lossy: close, not equal
            assert np.abs(ds.X[0].astype(float) - camera).mean() < 3
        else:
            np.testing.assert_array_equal(ds.X[0], image)


def test_mixed_sizes_are_refused_with_the_option_that_fixes_them(tmp_path, camera):
    Image.fromarray(camera).save(tmp_path / "big.png")
    Image.fromarray(camera[:32, :48]).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match=r"different sizes.*--resize HxW"):
        read_data(tmp_path)
    ds = read_data(tmp_path, image_size=(32, 32))
    assert ds.X.shape == (2, 32, 32) and ds.X.dtype == np.uint8


def test_mixed_bit_depths_are_refused(tmp_path, camera):
    Image.fromarray(camera).save(tmp_path / "a.png")
    Image.fromarray(camera.astype(np.uint16) * 257).save(tmp_path / "b.tif")
    with pytest.raises(ValueError, match="mix bit depths"):
        read_data(tmp_path)


def test_resize_keeps_dtype_range_and_content(camera):
    deep = camera.astype(np.uint16) * 257
    small = resize_image(deep, (32, 32))
    assert small.dtype == np.uint16 and small.shape == (32, 32)
    # the same picture at half size: close to the 2×2 block means, unlike a shuffled picture
    blocks = deep.reshape(32, 2, 32, 2).mean(axis=(1, 3))
    shuffled = np.random.default_rng(0).permutation(blocks.ravel()).reshape(blocks.shape)
    assert np.abs(small - blocks).mean() < 0.2 * np.abs(shuffled - blocks).mean()
    colour = resize_image(skdata.astronaut()[::4, ::4], (40, 30))
    assert colour.shape == (40, 30, 3) and colour.dtype == np.uint8
    with pytest.raises(ValueError, match="positive"):
        resize_image(camera, (0, 10))


def test_class_folders_may_nest_and_images_beside_them_are_refused(tmp_path, camera):
    for folder in ("a/deep", "b"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.roll(camera, i, axis=0)).save(tmp_path / "data" / folder / f"{i}.png")
    ds = read_data(tmp_path / "data")
    assert ds.class_names == ["a", "b"] and ds.y.tolist() == ["a"] * 3 + ["b"] * 3
    Image.fromarray(camera).save(tmp_path / "data" / "loose.png")
    with pytest.raises(ValueError, match=r"1 image\(s\) beside its class sub-folders \(e.g. loose.png\)"):
        read_data(tmp_path / "data")
    # an empty sub-folder does not turn a flat folder into a labelled one
    (tmp_path / "flat" / "notes").mkdir(parents=True)
    Image.fromarray(camera).save(tmp_path / "flat" / "x.png")
    assert read_data(tmp_path / "flat").X.shape == (1, 64, 64)


def test_bilevel_images_are_grey_and_float_images_are_skipped_by_name(tmp_path, camera):
    Image.fromarray(camera > 128).convert("1").save(tmp_path / "bw.png")
    Image.fromarray(camera.astype(np.float32) / 255, mode="F").save(tmp_path / "float.tif")
    ds = read_data(tmp_path)
    assert ds.X.shape == (1, 64, 64) and set(np.unique(ds.X)) <= {0, 255}
    assert [(p.rsplit("/", 1)[-1], "32-bit float images are not supported" in r) for p, r in ds.skipped] == [
        ("float.tif", True)]


def test_written_files_follow_the_umask(tmp_path):
    import os

    from synthaug.io import atomic_write_bytes

    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "out.bin", b"data")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"data" and (path.stat().st_mode & 0o777) == 0o644


def test_array_files_that_cannot_be_used_are_named(tmp_path):
    np.save(tmp_path / "vector.npy", np.arange(5.0))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=r"vector.npy has shape \(5,\); expected samples along the first axis"):
        read_data(tmp_path / "vector.npy")
    for name in ("objects.npy", "junk.npy"):
        with pytest.raises(ValueError, match=rf"{name} is not a readable numeric .npy array file"):
            read_data(tmp_path / name)
    np.savez(tmp_path / "d.npz", Z=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"d.npz has no array named 'X' \(found: \['Z'\]\)"):
        read_data(tmp_path / "d.npz")


def test_an_output_folders_sample_grid_is_not_read_as_data(tmp_path, camera):
    import json

    (tmp_path / "out" / "a").mkdir(parents=True)
    Image.fromarray(camera).save(tmp_path / "out" / "a" / "real_0.png")
    Image.fromarray(camera[:32]).save(tmp_path / "out" / "grid.png")
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(
        {"files": [{"path": "a/real_0.png", "kind": "real"}, {"path": "grid.png", "kind": "grid"}]}))
    ds = read_data(tmp_path / "out")
    assert ds.X.shape == (1, 64, 64) and ds.class_names == ["a"]
    (tmp_path / "out" / "manifest.json").write_text("{broken")  # unlisted, the grid is a loose image
    with pytest.raises(ValueError, match="beside its class sub-folders"):
        read_data(tmp_path / "out")


def test_images_png_cannot_hold_are_written_as_arrays_with_their_record(tmp_path):
    from synthaug.io import write_samples
    from synthaug.provenance import build_record, verify

    rgb16 = (np.random.default_rng(0).random((3, 40, 40, 3)) * 65535).astype(np.uint16)
    (written,) = write_samples(rgb16, tmp_path / "rgb16", record=build_record(seed=0))
    assert written.name == "samples.npz"  # Pillow cannot write 16-bit colour PNGs
    with np.load(written) as npz:
        np.testing.assert_array_equal(npz["X"], rgb16)
    assert verify(written)[0].record_status == "valid"
    grey16 = rgb16[..., 0]
    assert [p.suffix for p in write_samples(grey16, tmp_path / "grey16")] == [".png"] * 3


def test_write_samples_names_a_generate_tuple(tmp_path):
    from synthaug.io import write_samples

    X = np.zeros((2, 40, 40), np.uint8)
    with pytest.raises(TypeError, match=r"write_samples\(X, out_dir, y=y\)"):
        write_samples((X, np.array([0, 1])), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("label, why", [("N/A", "path separator"), ("../up", "path separator"),
                                        ("", "it is empty"), ("..", "names a folder that already exists"),
                                        (".hidden", "hidden")])
def test_labels_that_cannot_be_folder_names_are_refused_before_writing(tmp_path, camera, label, why):
    from synthaug.io import write_samples

    X = np.stack([camera, camera])
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=f"label {label!r} cannot name a class folder .*{why}"):
        write_samples(X, out, y=np.array(["ok", label]))
    assert not out.exists() and not any(tmp_path.iterdir())


def test_an_interrupted_write_leaves_no_samples_behind(tmp_path, camera, monkeypatch):
    from synthaug import io as sio

    real_write = sio.atomic_write_bytes
    calls = []

    def interrupted(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_write(path, data)

    monkeypatch.setattr(sio, "atomic_write_bytes", interrupted)
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "mine.txt").write_text("user file")
    for out, existed in ((tmp_path / "new", False), (tmp_path / "kept", True)):
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            sio.write_samples(np.stack([camera] * 4), out, y=np.array([0, 1, 0, 1]), overwrite=True)
        assert len(calls) == 3
        left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
        assert left == ["kept", "kept/mine.txt"]  # no PNG, no class folder, no .part file


def test_hidden_files_and_upper_case_suffixes(tmp_path, camera):
    (tmp_path / "a").mkdir()
    Image.fromarray(camera).save(tmp_path / "a" / "1.png")
    (tmp_path / "._1.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # a Mac's resource fork
    (tmp_path / "a" / "._1.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    ds = read_data(tmp_path)
    assert ds.class_names == ["a"] and len(ds.X) == 1 and not ds.skipped
    with open(tmp_path / "DIGITS.NPZ", "wb") as fh:  # np.savez would append .npz to the name
        np.savez(fh, X=np.zeros((3, 4)))
    assert read_data(tmp_path / "DIGITS.NPZ").X.shape == (3, 4)


def test_mixed_channel_counts_name_a_file_of_each(tmp_path, camera):
    Image.fromarray(camera).save(tmp_path / "grey.png")
    Image.fromarray(np.stack([camera] * 3, -1)).save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match=r"mix channel counts \(\(64, 64\): grey.png, \(64, 64, 3\): colour.png;"):
        read_data(tmp_path)


def test_grey_with_alpha_and_palettes_keep_the_channels_they_need(tmp_path, camera):
    opaque = np.stack([camera, np.full_like(camera, 255)], -1)
    see_through = np.stack([camera, (camera > 100).astype(np.uint8) * 255], -1)
    for folder, image, mode in (("la", opaque, "LA"), ("la_alpha", see_through, "LA")):
        (tmp_path / folder).mkdir()
        Image.fromarray(image, mode).save(tmp_path / folder / "x.png")
    np.testing.assert_array_equal(read_data(tmp_path / "la").X[0], camera)  # grey stays grey
    rgba = read_data(tmp_path / "la_alpha").X[0]
    assert rgba.shape == (64, 64, 4)
    np.testing.assert_array_equal(rgba[..., 0], camera)
    np.testing.assert_array_equal(rgba[..., 3], see_through[..., 1])
    (tmp_path / "palette").mkdir()
    Image.fromarray(camera).convert("P").save(tmp_path / "palette" / "x.png")  # a grey palette
    assert read_data(tmp_path / "palette").X.shape == (1, 64, 64)


def test_an_output_folder_of_arrays_is_read_through_its_manifest(tmp_path):
    import json

    out = tmp_path / "out"
    out.mkdir()
    np.savez(out / "samples.npz", X=np.arange(24.0).reshape(3, 8), y=np.array([0, 1, 0]))
    (out / "manifest.json").write_text(json.dumps({"files": [{"path": "samples.npz", "kind": "synthetic"},
                                                             {"path": "provenance.json", "kind": "provenance"}]}))
    ds = read_data(out)
    assert ds.X.shape == (3, 8) and ds.y.tolist() == [0, 1, 0]
    np.savez(out / "real.npz", X=np.zeros((2, 8)))
    (out / "manifest.json").write_text(json.dumps({"files": [{"path": "samples.npz", "kind": "synthetic"},
                                                             {"path": "real.npz", "kind": "real"}]}))
    with pytest.raises(ValueError, match=r"holds no images but the arrays \['real.npz', 'samples.npz'\]"):
        read_data(out)
    assert read_data(out, leave_out=("grid", "real")).X.shape == (3, 8)


def test_a_folder_of_converted_modes_gets_one_channel_count(tmp_path, camera):
    colour = np.stack([camera, camera[::-1], camera[:, ::-1]], -1)
    cases = {  # folder: (images with their modes, expected sample shape)
        "palettes": ([(colour, "RGB", "P"), (camera, "L", "P")], (64, 64, 3)),  # one colour, one grey palette
        "la": ([(np.stack([camera, np.full_like(camera, 255)], -1), "LA", None),
                (np.stack([camera, np.where(camera > 250, 0, 255).astype(np.uint8)], -1), "LA", None)],
               (64, 64, 4)),  # one opaque, one with transparent pixels: both keep alpha
        "rgb_and_la": ([(colour, "RGB", None), (np.stack([camera, np.full_like(camera, 255)], -1), "LA", None)],
                       (64, 64, 3)),  # the folder's RGB decides
    }
    for folder, (images, shape) in cases.items():
        (tmp_path / folder).mkdir()
        for i, (array, mode, convert) in enumerate(images):
            image = Image.fromarray(array)
            assert image.mode == mode
            (image.convert(convert) if convert else image).save(tmp_path / folder / f"{i}.png")
        assert read_data(tmp_path / folder).X.shape == (2, *shape), folder
    big_endian = tmp_path / "endian"
    big_endian.mkdir()
    deep = camera.astype(np.uint16) * 257
    Image.fromarray(deep).save(big_endian / "a.png")
    Image.fromarray(deep.astype(">u2")).save(big_endian / "b.tif")
    X = read_data(big_endian).X
    assert X.dtype == np.uint16 and X.dtype.isnative
    np.testing.assert_array_equal(X[0], X[1])
