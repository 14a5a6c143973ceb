"""The keyed invisible watermark: invisibility, robustness to each attack, false positives, API."""
import io
import warnings

import numpy as np
import pytest
from PIL import Image

skimage_data = pytest.importorskip("skimage.data")
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402

from synthaug.provenance import DEFAULT_KEY, KEY_ENV, detect, embed  # noqa: E402
from synthaug.provenance.generated import carries_payload, mark_samples  # noqa: E402

PAYLOAD = 0xC0FFEE42


@pytest.fixture(scope="module")
def real_images():
    """Grey and colour real images as shipped with scikit-image (retina: a 512×512 crop)."""
    return {
        "camera": skimage_data.camera(),
        "astronaut": skimage_data.astronaut(),
        "coffee": skimage_data.coffee(),
        "immunohistochemistry": skimage_data.immunohistochemistry(),
        "retina": skimage_data.retina()[450:962, 450:962],
    }


@pytest.fixture(scope="module")
def marked(real_images):
    return {name: embed(im[None], payload=PAYLOAD)[0] for name, im in real_images.items()}


# -- attacks, on the 8-bit scale ---------------------------------------------------------------
def jpeg(x, quality=50):
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def noise(x, sigma=5.0):
    rng = np.random.default_rng(0)
    return np.clip(np.rint(x + rng.normal(0, sigma, x.shape)), 0, 255).astype(np.uint8)


def brightness(x, factor):
    return np.clip(np.rint(x * factor), 0, 255).astype(np.uint8)


def contrast(x, factor):
    mean = x.mean()
    return np.clip(np.rint((x - mean) * factor + mean), 0, 255).astype(np.uint8)


def crop(x, fraction=0.1, where="centre"):
    h, w = x.shape[:2]
    dh, dw = int(h * fraction), int(w * fraction)
    if where == "centre":
        return x[dh // 2: h - (dh - dh // 2), dw // 2: w - (dw - dw // 2)]
    return x[dh:, dw:]


def resize_back(x, factor=0.5, method=Image.BICUBIC):
    h, w = x.shape[:2]
    small = Image.fromarray(x).resize((int(w * factor), int(h * factor)), method)
    return np.asarray(small.resize((w, h), method))


ATTACKS = {
    "jpeg50": jpeg,
    "noise5": noise,
    "brightness+20%": lambda x: brightness(x, 1.2),
    "brightness-20%": lambda x: brightness(x, 0.8),
    "contrast+20%": lambda x: contrast(x, 1.2),
    "contrast-20%": lambda x: contrast(x, 0.8),
    "crop10%-centre": crop,
    "crop10%-corner": lambda x: crop(x, where="corner"),
    "resize50%-bicubic": resize_back,
    "resize50%-bilinear": lambda x: resize_back(x, method=Image.BILINEAR),
    "resize50%-lanczos": lambda x: resize_back(x, method=Image.LANCZOS),
    "rot90": lambda x: np.rot90(x, 1),
    "rot180": lambda x: np.rot90(x, 2),
    "rot270": lambda x: np.rot90(x, 3),
    "flip-lr": lambda x: x[:, ::-1],
    "flip-ud": lambda x: x[::-1],
    "jpeg50+crop+rot90": lambda x: np.rot90(jpeg(crop(x, where="corner"))),
}


@pytest.mark.parametrize("name", ["camera", "astronaut", "coffee", "immunohistochemistry", "retina"])
def test_invisible_psnr_and_ssim(real_images, marked, name):
    im, m = real_images[name], marked[name]
    assert peak_signal_noise_ratio(im, m, data_range=255) >= 40.0
    assert structural_similarity(im, m, data_range=255, channel_axis=-1 if im.ndim == 3 else None) >= 0.98


@pytest.mark.parametrize("name", ["camera", "astronaut", "coffee", "immunohistochemistry", "retina"])
def test_untouched_output_is_detected_with_its_payload(marked, name):
    result = detect(marked[name][None])[0]
    assert result.detected and result.p_value < 1e-30
    assert result.payload == PAYLOAD
    assert result.transform == "identity" and result.shift == (0, 0)


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("name", ["camera", "astronaut"])
def test_detected_after_attack(marked, name, attack):
    attacked = np.ascontiguousarray(ATTACKS[attack](marked[name]))
    result = detect([attacked])[0]
    assert result.detected, f"{name} after {attack}: p={result.p_value:.2e}, score={result.score:.1f}"
    assert result.p_value <= 1e-6
    assert result.payload == PAYLOAD


@pytest.mark.parametrize("turn, name", [
    (lambda x: np.rot90(x, 1), "rot90"), (lambda x: np.rot90(x, 3), "rot270"), (lambda x: x[:, ::-1], "flip-lr"),
    (lambda x: x[::-1], "flip-ud"), (lambda x: x.T, "transpose"),
])
def test_rotation_and_flip_are_reported(marked, turn, name):
    assert detect([np.ascontiguousarray(turn(marked["camera"]))])[0].transform == name


def _real_patches(n_per_image: int, seed: int = 0):
    names = ["astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel",
             "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket",
             "text", "logo"]
    rng = np.random.default_rng(seed)
    patches = []
    for name in names:
        im = getattr(skimage_data, name)()
        for _ in range(n_per_image):
            size = int(rng.choice([64, 96, 128]))
            y0, x0 = rng.integers(0, im.shape[0] - size + 1), rng.integers(0, im.shape[1] - size + 1)
            patches.append(im[y0:y0 + size, x0:x0 + size])
    return patches


def test_no_detection_on_1000_unmarked_real_patches():
    patches = _real_patches(52)
    assert len(patches) >= 1000
    results = detect(patches)
    assert not any(r.detected for r in results)
    p = np.array([r.p_value for r in results])
    # Calibrated (if conservative): not more small p-values than the level says.
    assert np.mean(p <= 0.01) <= 0.03
    assert p.min() > 1e-5


def test_no_detection_with_another_key(real_images):
    patches = _real_patches(6, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a few patches are too flat to mark
        alice = embed(patches, key="alice", payload=1)
    assert not any(r.detected for r in detect(alice))
    assert not any(r.detected for r in detect(alice, key="bob"))
    full = embed(real_images["camera"][None], key="alice")
    assert not detect(full)[0].detected
    assert detect(full, key="alice")[0].detected


def test_key_from_environment(real_images, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "a private key")
    m = embed(real_images["camera"][None], payload=7)
    assert detect(m)[0].payload == 7  # the environment's key
    assert not detect(m, key=DEFAULT_KEY)[0].detected
    monkeypatch.delenv(KEY_ENV)
    assert not detect(m)[0].detected


def test_zero_bit_mark_has_no_payload(real_images):
    result = detect(embed(real_images["camera"][None]))[0]
    assert result.detected and result.payload is None


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_shape_dtype_and_range_preserved(real_images, dtype, channels):
    rgb = real_images["astronaut"][:96, :128]
    if channels is None:
        base = rgb[..., 0]
    elif channels == 4:
        base = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 200, np.uint8)], axis=-1)
    else:
        base = rgb[..., :channels]
    scale = {np.uint8: 1, np.uint16: 16, np.int16: 8, np.float32: 1 / 255, np.float64: 1 / 255}[dtype]
    images = (base.astype(np.float64) * scale - (1000 if dtype is np.int16 else 0)).astype(dtype)[None].repeat(2, 0)
    out = embed(images, payload=3)
    assert out.shape == images.shape and out.dtype == images.dtype
    colour = slice(0, 3) if channels == 4 else slice(None)
    assert out[..., colour].min() >= images[..., colour].min() and out[..., colour].max() <= images[..., colour].max()
    assert not np.array_equal(out, images)
    if channels == 4:
        np.testing.assert_array_equal(out[..., 3], images[..., 3])  # alpha untouched
    assert all(r.detected for r in detect(out))


def test_list_of_sizes_gives_a_list(real_images):
    ims = [real_images["camera"][:64, :200], real_images["coffee"][:300, :100]]
    out = embed(ims, payload=5)
    assert isinstance(out, list) and [o.shape for o in out] == [i.shape for i in ims]
    assert all(r.detected for r in detect(out))


def test_small_and_flat_images_are_left_unmarked_and_said_so():
    small = (np.random.default_rng(0).random((3, 16, 16)) * 255).astype(np.uint8)
    with pytest.warns(UserWarning, match=r"smaller than 32×32: no pixel watermark"):
        out = embed(small)
    np.testing.assert_array_equal(out, small)
    result = detect(small)[0]
    assert not result.detected and result.p_value == 1.0 and "smaller than 32" in result.message
    digits_like = np.random.default_rng(0).integers(0, 17, (2, 64, 64)).astype(np.uint8)
    with pytest.warns(UserWarning, match="levels"):
        np.testing.assert_array_equal(embed(digits_like), digits_like)
    flat = np.full((1, 64, 64), 0.5)
    with pytest.warns(UserWarning, match="constant"):
        np.testing.assert_array_equal(embed(flat), flat)
    empty = np.zeros((1, 0, 0), np.uint8)
    with pytest.warns(UserWarning, match=r"0×0, smaller than 32×32"):
        assert embed(empty).shape == (1, 0, 0)
    assert "0×0" in detect(empty)[0].message


def test_same_input_same_output(real_images):
    a = embed(real_images["camera"][None], payload=9)
    b = embed(real_images["camera"][None], payload=9)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, embed(real_images["camera"][None], payload=10))


def test_input_errors():
    with pytest.raises(ValueError, match=r"image\[None\]"):
        embed(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="payload"):
        embed(np.zeros((1, 64, 64), np.uint8), payload=2**32)
    with pytest.raises(ValueError, match="payload"):
        embed(np.zeros((1, 64, 64), np.uint8), payload=b"12345")
    with pytest.raises(TypeError, match="key"):
        detect(np.zeros((1, 64, 64), np.uint8), key=123)
    with pytest.raises(ValueError, match="C in 1..4"):
        detect(np.zeros((1, 64, 64, 5), np.uint8))
    with pytest.raises(ValueError, match="fpr"):
        detect(np.zeros((1, 64, 64), np.uint8), fpr=0)
    for psnr in (float("nan"), float("-inf"), float("inf"), 0, -3, "42"):
        with pytest.raises(ValueError, match="psnr must be a positive, finite number"):
            embed(np.zeros((1, 64, 64), np.float32), psnr=psnr)


def _ct_uint16():
    pydicom_data = pytest.importorskip("pydicom.data")
    import pydicom

    try:
        path = pydicom_data.get_testdata_file("693_J2KI.dcm")
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    except Exception as exc:  # the file or its JPEG 2000 decoder may be missing
        pytest.skip(f"pydicom's 512×512 CT is not readable here: {exc}")
    return np.clip(hu + 1024, 0, None).astype(np.uint16)


def test_ct_uint16(recwarn):
    ct = _ct_uint16()
    m = embed(ct[None], payload=PAYLOAD)[0]
    span = float(ct.max() - ct.min())
    assert m.dtype == np.uint16
    assert peak_signal_noise_ratio(ct, m, data_range=span) >= 40
    assert structural_similarity(ct, m, data_range=span) >= 0.98
    rng = np.random.default_rng(0)
    noisy = np.clip(np.rint(m + rng.normal(0, 5 * span / 255, m.shape)), 0, 65535).astype(np.uint16)
    for attacked in (m, noisy, crop(m), np.rot90(m)):
        result = detect([np.ascontiguousarray(attacked)])[0]
        assert result.detected and result.payload == PAYLOAD
    assert not detect(ct[None])[0].detected


# -- the generators' output ------------------------------------------------------------------------
def test_generated_images_are_marked_by_default(tiny_image_vae):
    from synthaug.provenance.record import model_fingerprint, payload_for

    vae, _ = tiny_image_vae
    S = vae.generate(8, random_state=0)
    S0 = vae.generate(8, random_state=0, watermark=False)
    assert S.shape == S0.shape == (8, 32, 32) and S.dtype == S0.dtype == np.uint8
    # Exactly a zero-bit watermark (32×32 is under 192×192 pixels), and nothing else.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(S, embed(S0))
    assert not np.array_equal(S, S0)
    results = detect(S)
    assert sum(r.detected for r in results) >= 6  # 32×32 is the smallest size: most, at 1e-6
    assert all(r.payload is None for r in results)
    assert not any(r.detected for r in detect(S0))
    # From 192×192 pixels up the mark carries the model's id.
    big = np.tile(S0[:2], (1, 7, 7))  # 224×224
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        marked = mark_samples(vae, big)
        np.testing.assert_array_equal(marked, embed(big, payload=payload_for(model_fingerprint(vae))))


def _centre(image, size=128):
    h, w = image.shape[:2]
    return np.ascontiguousarray(image[(h - size) // 2:(h + size) // 2, (w - size) // 2:(w + size) // 2])


@pytest.mark.parametrize("name", ["camera", "astronaut"])
def test_small_generated_images_survive_every_single_attack(real_images, name):
    """128×128 images get generate()'s zero-bit mark, which survives each single attack at 1e-6."""
    original = _centre(real_images[name])
    assert not carries_payload(original[None])
    m = embed(original[None])[0]
    assert peak_signal_noise_ratio(original, m, data_range=255) >= 40
    assert structural_similarity(original, m, data_range=255, channel_axis=-1 if m.ndim == 3 else None) >= 0.98
    for attack, fn in ATTACKS.items():
        if attack != "jpeg50+crop+rot90":  # combined attacks need more pixels (see the README's table)
            result = detect([np.ascontiguousarray(fn(m))])[0]
            assert result.detected, f"{name} 128×128 after {attack}: p={result.p_value:.1e}"


def test_small_ct_crop_is_marked_and_survives_geometric_edits_and_noise():
    ct = _centre(_ct_uint16())
    m = embed(ct[None])[0]
    span = float(ct.max() - ct.min())
    assert peak_signal_noise_ratio(ct, m, data_range=span) >= 40
    assert structural_similarity(ct, m, data_range=span) >= 0.98
    noisy = np.clip(np.rint(m + np.random.default_rng(0).normal(0, 5 * span / 255, m.shape)), 0, 65535)
    # (JPEG 50 through an 8-bit window is borderline at this size: see the README's table.)
    for attacked in (m, noisy.astype(np.uint16), crop(m), crop(m, where="corner"), np.rot90(m), m[:, ::-1]):
        assert detect([np.ascontiguousarray(attacked)])[0].detected


def test_small_and_tabular_samples_are_not_pixel_marked(tiny_digits_vae):
    vae, _ = tiny_digits_vae
    X, y = vae.generate(20, random_state=0)
    X0, y0 = vae.generate(20, random_state=0, watermark=False)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
