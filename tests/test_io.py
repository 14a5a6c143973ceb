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
