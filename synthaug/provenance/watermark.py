"""Keyed invisible watermark for images: spread spectrum on a tiled, band-limited pattern.

How it works
------------
A secret (or the public default) key seeds six orthonormal random patterns that live in a band
of spatial frequencies (periods of 3.5 to 8 pixels) of a 64×64 tile: a *pilot* pattern for
detection and five *symbol* patterns for the payload. The payload (a 32-bit id and its CRC-16,
cut into four 12-bit symbols, plus their XOR as a fifth) is written by circularly shifting each
symbol pattern by its symbol's value (4,096 positions). The sum is tiled over the image,
weighted by a perceptual mask that follows SSIM's own terms (local contrast and brightness), and
added to the luminance; the total strength is set from a target PSNR.

Detection high-passes and locally normalises the luminance, folds it onto one 64×64 tile (a crop
only shifts the tile; resizing to half and back, JPEG, noise and brightness/contrast changes keep
the band), whitens its spectrum, and correlates it with the pilot at all 4,096 circular shifts
of the 8 rotations/flips of the square. For an image that does not carry the pilot, each of these
normalised correlations has an exact null distribution (the first coordinate of a random
direction on the sphere: a Beta law), whatever the image, because the pilot is a uniformly random
direction drawn from the key. The p-value is the weighted-Bonferroni combination, with half the
level given to the unrotated, unshifted hypothesis (an untouched output) and half spread over the
32,767 others. An image is reported as marked when that p-value is at most the false-positive rate
asked for (default 1e-6). The payload is read afterwards, once aligned on the pilot: each symbol
is the shift at which its pattern correlates best; the parity symbol replaces the weakest one if
the CRC fails; the id is reported only when its CRC checks.

Out of scope: scale changes that are not undone (a resized image is detected only after being
brought back to its size), rotations by other angles than multiples of 90°, and images smaller
than 32×32 (no pixel mark; see :mod:`synthaug.provenance.record`). Flat or saturated regions
cannot carry a mark, so an almost constant image is left (nearly) unmarked. The payload needs
about 96×96 pixels or more to be read back untouched, 256×256 to survive most edits; generated
images under 192×192 therefore get a zero-bit mark (:data:`PAYLOAD_MIN_PIXELS`).
"""
from __future__ import annotations

import functools
import hashlib
import os
import warnings
from dataclasses import dataclass

import numpy as np

from synthaug._param_validation import POSITIVE_FINITE

DEFAULT_KEY = b"synthaug public watermark key v1"
"""The public default key: anyone can detect synthaug's default mark, and anyone can also forge it.
Set ``SYNTHAUG_WATERMARK_KEY`` (or pass ``key=``) for a private mark."""

KEY_ENV = "SYNTHAUG_WATERMARK_KEY"
SCHEME = "synthaug-ss64-v1"
MIN_SIZE = 32
PAYLOAD_MIN_PIXELS = 192 * 192
"""Images with fewer pixels than this (fewer than nine 64×64 tiles) get a zero-bit mark from
``generate``: a payload would take half of the mark's energy from detection, and at that size it
is rarely read back after an edit anyway. Their provenance record still carries the model's id."""
DEFAULT_FPR = 1e-6
DEFAULT_PSNR = 42.0

_TILE = 64
_BAND = (1 / 8, 1 / 3.5)  # cycles per pixel
_PILOT_SHARE = 0.5  # of the mark's energy; the rest carries the payload
_SYMBOL_BITS = 12  # one payload symbol = a circular shift of its pattern in the 64×64 tile
_N_SYMBOLS = 5  # 32-bit id + CRC-16 in four symbols, and one XOR parity symbol
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# SSIM's stabilising constants on the 8-bit scale: (0.01 * 255)^2 and (0.03 * 255)^2.
_C1, _C2 = 6.5025, 58.5225
_SSIM_GAIN = 0.1  # mark amplitude at most this fraction of sqrt(2 var + C2): keeps SSIM near 0.99
# Below PAYLOAD_MIN_PIXELS fewer tiles add up in detection, so a little more amplitude is allowed
# where the SSIM cap binds (flat CT soft tissue): SSIM stays above 0.98 (see the README's table).
_SSIM_GAIN_SMALL = 0.11
_DARK_GAIN = 1.5  # and at most 1.5 * sqrt(2 mean^2 + C1) times that: less in dark regions
# Window sizes on the half-resolution grid (2×2 block means): 8, 8 and 12 pixels.
_MASK_WINDOW = 4
_HIGHPASS_WINDOW = 4
_NORM_WINDOW = 6
_MAX_UNMARKED_LEVELS = 32  # integer images using this many levels or fewer (digits, masks) get no mark
# What happened to an image whose tile matches after _dihedral(tile, i): the inverse of that map,
# rotations counter-clockwise as numpy.rot90 (the reflections are their own inverses).
_DIHEDRAL = ("identity", "rot270", "rot180", "rot90", "flip-lr", "anti-transpose", "flip-ud", "transpose")


@dataclass(frozen=True)
class WatermarkResult:
    """What :func:`detect` found in one image.

    Attributes
    ----------
    detected : bool
        Whether the key's mark is present at the requested false-positive rate
        (``p_value <= fpr``).
    p_value : float
        Probability that an image *without* this key's mark scores at least this high,
        corrected for the 8 × 4,096 rotations, flips and shifts searched (1.0: no evidence).
    payload : int or None
        The 32-bit id carried by the mark, when detected and its CRC checks; otherwise None.
    score : float
        The best normalised correlation, in standard deviations under the null.
    transform : str
        How the image was turned since marking: ``"identity"``, ``"rot90"``, ``"rot180"``,
        ``"rot270"`` (counter-clockwise, as ``numpy.rot90``), ``"flip-lr"``, ``"flip-ud"``,
        ``"transpose"`` or ``"anti-transpose"``.
    shift : tuple of int
        Circular shift (rows, columns) of the 64×64 tile at which the mark was found.
    message : str
        Why nothing could be tested (image too small or too flat), else ``""``.
    """

    detected: bool
    p_value: float
    payload: int | None
    score: float = 0.0
    transform: str = "identity"
    shift: tuple[int, int] = (0, 0)
    message: str = ""


# -- keys -----------------------------------------------------------------------------------------
def resolve_key(key: str | bytes | None = None) -> bytes:
    """The key to use: ``key`` if given, else ``$SYNTHAUG_WATERMARK_KEY``, else the public default."""
    if key is None:
        key = os.environ.get(KEY_ENV) or DEFAULT_KEY
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, (bytes, bytearray)) or len(key) == 0:
        raise TypeError(f"key must be a non-empty str or bytes; got {type(key).__name__}")
    return bytes(key)


def key_id(key: str | bytes | None = None) -> str:
    """A short public name for a key (16 hex digits of a keyed hash); it does not reveal the key."""
    return hashlib.sha256(b"synthaug key id\x00" + resolve_key(key)).hexdigest()[:16]


# -- patterns -------------------------------------------------------------------------------------
def _key_normals(key: bytes, label: bytes, n: int) -> np.ndarray:
    """n standard normals from SHAKE-256(key, label): the same on every platform and numpy version."""
    raw = hashlib.shake_256(b"synthaug watermark\x00" + label + b"\x00" + key).digest(16 * n)
    u = (np.frombuffer(raw, dtype="<u8") >> np.uint64(11)).astype(np.float64) * 2.0**-53
    u1, u2 = 1.0 - u[:n], u[n:]
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@functools.lru_cache(maxsize=1)
def _band():
    f = np.fft.fftfreq(_TILE)
    fy, fx = f[:, None], f[None, :]
    radius = np.hypot(fy, fx)
    band = (radius >= _BAND[0]) & (radius <= _BAND[1])
    iy, ix = np.nonzero(band)
    half = (f[ix] > 0) | ((f[ix] == 0) & (f[iy] > 0))  # one of each conjugate pair
    return band, iy[half], ix[half]


class _Patterns:
    """The key's pilot and symbol patterns: orthonormal vectors over the band's real dimensions."""

    def __init__(self, key: bytes):
        self.band, self.hy, self.hx = _band()
        self.n_half = len(self.hy)
        self.dim = 2 * self.n_half
        gauss = _key_normals(key, b"patterns", self.dim * (1 + _N_SYMBOLS)).reshape(self.dim, 1 + _N_SYMBOLS)
        q, r = np.linalg.qr(gauss)
        q = q * np.sign(np.diag(r))  # a Haar-random orthonormal frame: column 0 is the pilot
        self.spectra = [self.spectrum(q[:, j]) for j in range(1 + _N_SYMBOLS)]
        self.tiles = [np.fft.ifft2(s).real for s in self.spectra]

    def spectrum(self, v: np.ndarray) -> np.ndarray:
        """Full Hermitian 64×64 spectrum of a real band vector (real parts, then imaginary)."""
        s = np.zeros((_TILE, _TILE), dtype=np.complex128)
        z = v[: self.n_half] + 1j * v[self.n_half:]
        s[self.hy, self.hx] = z
        s[(-self.hy) % _TILE, (-self.hx) % _TILE] = np.conj(z)
        return s

    def tile(self, payload: int | None) -> np.ndarray:
        """The 64×64 spatial tile (unit RMS) for a payload, or the pilot alone for ``None``."""
        t = self.tiles[0].copy()
        if payload is not None:
            t *= np.sqrt(_PILOT_SHARE)
            gain = np.sqrt((1 - _PILOT_SHARE) / _N_SYMBOLS)
            for j, symbol in enumerate(_encode(payload)):
                t += gain * np.roll(self.tiles[1 + j], divmod(symbol, _TILE), axis=(0, 1))
        return (t / t.std()).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _patterns(key: bytes) -> _Patterns:
    return _Patterns(key)


@functools.lru_cache(maxsize=64)
def _tile(key: bytes, payload: int | None) -> np.ndarray:
    return _patterns(key).tile(payload)


# -- payload coding: 4,096-ary position symbols, CRC-16, one parity symbol ------------------------
def _crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _check_payload(payload) -> int | None:
    if payload is None:
        return None
    if isinstance(payload, (bytes, bytearray)):
        if len(payload) > 4:
            raise ValueError(f"payload must fit in 32 bits; got {len(payload)} bytes")
        payload = int.from_bytes(payload, "big")
    if not isinstance(payload, (int, np.integer)) or isinstance(payload, bool) or not 0 <= payload < 2**32:
        raise ValueError(f"payload must be an integer in [0, 2**32) or up to 4 bytes; got {payload!r}")
    return int(payload)


def _encode(payload: int) -> list[int]:
    """Five 12-bit symbols: the 32-bit id and its CRC-16 in four, then their XOR."""
    value = (payload << 16) | _crc16(payload.to_bytes(4, "big"))
    symbols = [(value >> (_SYMBOL_BITS * (3 - i))) & 0xFFF for i in range(4)]
    return symbols + [symbols[0] ^ symbols[1] ^ symbols[2] ^ symbols[3]]


def _decode(symbols: list[int], strength: list[float]) -> int | None:
    """The id if the CRC checks, after replacing at most the weakest symbol from the parity."""
    candidates = [symbols[:4]]
    weakest = int(np.argmin(strength))
    if weakest < 4:
        fixed = list(symbols[:4])
        fixed[weakest] = symbols[4]
        for i in range(4):
            if i != weakest:
                fixed[weakest] ^= symbols[i]
        candidates.append(fixed)
    for syms in candidates:
        value = 0
        for sym in syms:
            value = (value << _SYMBOL_BITS) | sym
        payload, crc = value >> 16, value & 0xFFFF
        if _crc16(payload.to_bytes(4, "big")) == crc:
            return payload
    return None


# -- images ---------------------------------------------------------------------------------------
def _as_batch(images, name: str):
    """(list of images, was_array): an ndarray batch (n, H, W[, C]) or a list of (H, W[, C]) images."""
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise ValueError(
                f"{name} must be a batch of images (n, H, W) or (n, H, W, C); got shape {images.shape}"
                " (for one image pass image[None])"
            )
        return list(images), True
    if isinstance(images, (list, tuple)):
        return [np.asarray(im) for im in images], False
    raise TypeError(f"{name} must be an ndarray batch or a list of images; got {type(images).__name__}")


def _check_image(image: np.ndarray, name: str) -> None:
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (1, 2, 3, 4)):
        raise ValueError(f"each image in {name} must be (H, W) or (H, W, C) with C in 1..4; got {image.shape}")
    if image.dtype.kind not in "uif":
        raise TypeError(f"{name} must hold integer or float pixels; got dtype {image.dtype}")


def _luminance(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32, copy=False)
    if x.ndim == 2:
        return x
    if x.shape[-1] >= 3:
        return x[..., :3] @ _LUMA
    return x[..., 0]


def _colour(image: np.ndarray) -> np.ndarray:
    """The pixels that carry the mark: all but an alpha channel."""
    if image.ndim == 3 and image.shape[-1] in (2, 4):
        return image[..., :-1]
    return image


def _value_range(image: np.ndarray) -> tuple[float, float]:
    colour = _colour(image)
    if colour.size == 0:  # _unmarkable names its size
        return 0.0, 0.0
    return float(colour.min()), float(colour.max())


def _unmarkable(image: np.ndarray, lo: float, hi: float) -> str:
    """Why no pixel mark can be embedded in ``image`` (value range ``lo``..``hi``), or ``""``."""
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIZE:
        return f"image is {h}×{w}, smaller than {MIN_SIZE}×{MIN_SIZE}: no pixel watermark"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "image contains NaN or inf: no pixel watermark"
    if image.dtype.kind in "ui" and hi - lo + 1 <= _MAX_UNMARKED_LEVELS:
        return f"image uses {hi - lo + 1:g} grey levels (at most {_MAX_UNMARKED_LEVELS}): no pixel watermark"
    if hi <= lo:
        return "image is constant: no pixel watermark"
    return ""


def _box(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size×size window (reflected edges)."""
    from scipy import ndimage

    # Two row passes around a transpose: a column pass on a C-ordered array is several times slower.
    rows = ndimage.uniform_filter1d(x, size, axis=1, mode="reflect")
    return ndimage.uniform_filter1d(np.ascontiguousarray(rows.T), size, axis=1, mode="reflect").T


def _pool2(x: np.ndarray) -> np.ndarray:
    """Means of 2×2 blocks (the last row/column repeated for odd sizes)."""
    h, w = x.shape
    if h % 2 or w % 2:
        x = np.pad(x, ((0, h % 2), (0, w % 2)), mode="edge")
    return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) * np.float32(0.25)


def _up2(x: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.repeat(np.repeat(x, 2, axis=0), 2, axis=1)[:h, :w]


def _embed_one(image: np.ndarray, key: bytes, payload: int | None, psnr: float, lo: float, hi: float):
    # The mask and the PSNR are defined on the 8-bit scale: uint8 as is, else the image's range.
    offset, factor = (0.0, 1.0) if image.dtype == np.uint8 else (lo, 255.0 / (hi - lo))
    y8 = (_luminance(image) - np.float32(offset)) * np.float32(factor)
    h, w = y8.shape
    # Local statistics over 8×8 windows, computed on 2×2 block means (4× less work).
    mean = _box(_pool2(y8), _MASK_WINDOW)
    var = np.maximum(_box(_pool2(y8 * y8), _MASK_WINDOW) - mean * mean, 0)
    mask = _up2(np.minimum(np.sqrt(2 * var + _C2), _DARK_GAIN * np.sqrt(2 * mean * mean + _C1)), h, w)
    mark = mask * np.tile(_tile(key, payload), (-(-h // _TILE), -(-w // _TILE)))[:h, :w]
    rms = float(np.sqrt(np.mean(mark * mark)))
    if rms == 0:
        return image.copy()
    gain = min(255.0 / 10 ** (psnr / 20) / rms, _SSIM_GAIN if h * w >= PAYLOAD_MIN_PIXELS else _SSIM_GAIN_SMALL)
    mark *= np.float32(gain / factor)
    n_colour = image.shape[-1] - 1 if image.ndim == 3 and image.shape[-1] in (2, 4) else None
    if image.dtype.kind in "ui":
        # rint(x + m) == x + rint(m) for integer x: add the rounded mark in a wider integer type.
        wide = np.int16 if image.dtype.itemsize == 1 else np.int64
        delta, out = np.rint(mark).astype(wide), image.astype(wide)
    else:
        exact32 = image.dtype.itemsize <= 4  # float16/float32 values are exact in float32
        delta, out = mark, image.astype(np.float32 if exact32 else np.float64)
    if out.ndim == 2:
        out += delta
    else:
        for c in range(n_colour or out.shape[-1]):  # faster than broadcasting over the last axis
            out[..., c] += delta
    carrier = out if n_colour is None else out[..., :n_colour]
    np.clip(carrier, out.dtype.type(lo), out.dtype.type(hi), out=carrier)
    return out.astype(image.dtype)


def embed(images, key: str | bytes | None = None, payload: int | bytes | None = None, *,
          psnr: float = DEFAULT_PSNR):
    """Embed the keyed invisible watermark in a batch of images.

    Parameters
    ----------
    images : ndarray of shape (n, H, W) or (n, H, W, C), or list of (H, W[, C]) arrays
        Grey (C=1), grey+alpha (2), colour (3) or colour+alpha (4) images, any integer or float
        dtype (uint8, uint16 CT, floats in any range). Alpha is left untouched.
    key : str or bytes, default=None
        Watermark key. ``None`` uses ``$SYNTHAUG_WATERMARK_KEY`` if set, else the public default
        key :data:`DEFAULT_KEY` (anyone can detect — and forge — a mark made with it).
    payload : int or bytes, default=None
        A 32-bit id carried by the mark (e.g. linking to a provenance record). ``None`` embeds a
        zero-bit mark: all its energy goes to detection and :func:`detect` reports no payload.
        A payload halves the detection energy: on images under :data:`PAYLOAD_MIN_PIXELS`
        (192×192) that costs robustness (JPEG 50, crops), which is why ``generate`` embeds
        zero-bit marks there.
    psnr : float, default=42.0
        Target peak signal-to-noise ratio in dB, on the 8-bit scale for uint8 images and on the
        image's own value range otherwise. The perceptual mask may keep the mark weaker (flat
        images), never stronger.

    Returns
    -------
    marked : same type as ``images``
        Marked images of the same shape and dtype, within each image's original value range.
        Images smaller than 32×32, constant images, integer images using at most 32 levels
        and images with NaN/inf are returned unchanged, with a warning.
    """
    batch, was_array = _as_batch(images, "images")
    key_bytes = resolve_key(key)
    payload = _check_payload(payload)
    POSITIVE_FINITE.check("psnr", psnr)  # decibels
    out, skipped = [], []
    for image in batch:
        _check_image(image, "images")
        lo, hi = _value_range(image)
        reason = _unmarkable(image, lo, hi)
        if reason:
            skipped.append(reason)
            out.append(image.copy())
        else:
            out.append(_embed_one(image, key_bytes, payload, float(psnr), lo, hi))
    if skipped:
        warnings.warn(f"{len(skipped)} of {len(batch)} images were left unmarked: {skipped[0]}", UserWarning,
                      stacklevel=2)
    return np.stack(out) if was_array and out else out


# -- detection ------------------------------------------------------------------------------------
def _fold(image: np.ndarray) -> np.ndarray:
    """High-passed, contrast-normalised luminance summed over the 64×64 tiles of the image."""
    y = _luminance(image)
    h, w = y.shape
    y = y - _up2(_box(_pool2(y), _HIGHPASS_WINDOW), h, w)
    s = np.sqrt(np.maximum(_up2(_box(_pool2(y * y), _NORM_WINDOW), h, w), 0))
    y = y / (s + np.float32(0.1 * s.mean() + 1e-12))
    hp, wp = -(-h // _TILE) * _TILE, -(-w // _TILE) * _TILE
    if (hp, wp) != (h, w):
        y = np.pad(y, ((0, hp - h), (0, wp - w)))
    return y.reshape(hp // _TILE, _TILE, wp // _TILE, _TILE).sum(axis=(0, 2), dtype=np.float64)


def _dihedral(tile: np.ndarray, index: int) -> np.ndarray:
    out = np.rot90(tile, index % 4)
    return out[:, ::-1] if index >= 4 else out


def _whitened(folded: np.ndarray, band: np.ndarray) -> tuple[np.ndarray, float]:
    """The folded tile restricted to the band, each frequency divided by the local spectral level.

    Returns the spatial tile and its spectrum's norm. Whitening commutes with the rotations and
    flips of the square (the band and the smoothing window are symmetric), so it is done once.
    """
    from scipy import ndimage

    spectrum = np.fft.fft2(folded)
    power = ndimage.uniform_filter(np.abs(spectrum) ** 2, 5, mode="wrap")
    white = np.where(band, spectrum / np.sqrt(power + 1e-30), 0)
    return np.fft.ifft2(white).real, float(np.sqrt(np.sum(np.abs(white) ** 2)))


def _beta_tail(t, dim: int) -> np.ndarray:
    """P(T >= t) for T the first coordinate of a uniform random unit vector in R^dim."""
    from scipy import special

    t = np.clip(t, -1.0, 1.0)
    half = 0.5 * special.betainc((dim - 1) / 2, 0.5, 1.0 - t * t)
    return np.where(t > 0, half, 1.0 - half)


def _detect_one(image: np.ndarray, pats: _Patterns, fpr: float) -> WatermarkResult:
    white, norm = _whitened(_fold(image), pats.band)
    if norm == 0:
        return WatermarkResult(False, 1.0, None, message="no signal in the watermark band")
    variants = np.stack([_dihedral(white, i) for i in range(8)])
    spectra = np.fft.fft2(variants)
    # Normalised correlation with the pilot at every circular shift of every variant. The pilot's
    # band vector has unit norm, i.e. norm sqrt(2) over the full Hermitian plane.
    t = np.fft.ifft2(spectra * np.conj(pats.spectra[0])).real * (_TILE * _TILE / (norm * np.sqrt(2.0)))
    # Weighted Bonferroni: half the level on the untouched-output hypothesis (identity, no shift),
    # half shared by the 8 * 4096 - 1 others.
    n_other = t.size - 1
    p_first = 2.0 * float(_beta_tail(t[0, 0, 0], pats.dim))
    t_first = t[0, 0, 0]
    t[0, 0, 0] = -1.0
    flat = int(np.argmax(t))
    index, rest = divmod(flat, _TILE * _TILE)
    shift = divmod(rest, _TILE)
    p_other = 2.0 * n_other * float(_beta_tail(t.flat[flat], pats.dim))
    if p_first <= p_other:
        p_value, score, index, shift = p_first, t_first, 0, (0, 0)
    else:
        p_value, score = p_other, t.flat[flat]
    p_value = min(1.0, p_value)
    detected = p_value <= fpr
    payload = _read_payload(spectra[index], pats, shift) if detected else None
    return WatermarkResult(detected, p_value, payload, float(score * np.sqrt(pats.dim)), _DIHEDRAL[index],
                           (int(shift[0]), int(shift[1])))


def _read_payload(spectrum: np.ndarray, pats: _Patterns, shift) -> int | None:
    """Each symbol is the circular shift of its pattern, relative to the pilot's, that fits best."""
    f = np.fft.fftfreq(_TILE)
    # Undo the pilot's shift in the frequency domain (a roll by -shift).
    phase = np.exp(2j * np.pi * (f[:, None] * shift[0] + f[None, :] * shift[1]))
    corr = np.fft.ifft2(spectrum * phase * np.conj(np.stack(pats.spectra[1:]))).real
    flat = corr.reshape(len(corr), -1).argmax(axis=1)
    strength = corr.reshape(len(corr), -1)[np.arange(len(corr)), flat]
    return _decode([int(i) for i in flat], [float(v) for v in strength])


def detect(images, key: str | bytes | None = None, *, fpr: float = DEFAULT_FPR) -> list[WatermarkResult]:
    """Look for the keyed watermark in each image.

    Parameters
    ----------
    images : ndarray of shape (n, H, W) or (n, H, W, C), or list of (H, W[, C]) arrays
        Images of any size, dtype and number of channels (as for :func:`embed`).
    key : str or bytes, default=None
        The key to test for; ``None``: ``$SYNTHAUG_WATERMARK_KEY`` if set, else the public default.
    fpr : float, default=1e-6
        False-positive rate: an unmarked image (or one marked with another key) is reported as
        marked with at most this probability. The p-value is exact per hypothesis for a random
        key and Bonferroni-corrected over the 32,768 rotations, flips and shifts searched.

    Returns
    -------
    results : list of WatermarkResult
        One per image: ``detected``, ``p_value``, ``payload`` (32-bit id or None), ``score``,
        ``transform``, ``shift`` and ``message``.
    """
    if not 0 < fpr < 1:
        raise ValueError(f"fpr must be in (0, 1); got {fpr!r}")
    batch, _ = _as_batch(images, "images")
    pats = _patterns(resolve_key(key))
    results = []
    for image in batch:
        _check_image(image, "images")
        reason = _unmarkable(image, *_value_range(image))
        if reason and "levels" not in reason:  # a low-contrast integer image can still be tested
            results.append(WatermarkResult(False, 1.0, None, message=reason))
            continue
        results.append(_detect_one(image, pats, fpr))
    return results
