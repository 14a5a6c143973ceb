"""Reading folders of images or arrays into numpy, and writing outputs atomically.

Nothing else in synthaug writes files; every write goes through :func:`atomic_write_bytes`.
"""
from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would follow the umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_archive(path, members: dict, *, overwrite: bool = False) -> Path:
    """Write ``members`` (name → bytes or str) as one zip file, atomically.

    An existing file is refused unless ``overwrite=True``. synthaug's model and detector files
    are such archives: JSON for data, never a pickle.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    return atomic_write_bytes(path, archive_bytes(members))


def archive_bytes(members: dict) -> bytes:
    """The bytes of a zip file holding ``members`` (name → bytes or str)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def read_archive(source, names, what: str) -> dict:
    """Read the members ``names`` of a zip file (a path, or its bytes), with JSON ones parsed.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` saying that the source is
    not a ``what`` when it is not a zip file, lacks a member, or holds invalid JSON.
    """
    import json
    import zipfile
    import zlib

    if isinstance(source, (bytes, bytearray)):
        label, source = what, io.BytesIO(source)
    else:
        label = source = Path(source)
        if not source.is_file():
            raise FileNotFoundError(f"no {what} at {source}")
    try:
        with zipfile.ZipFile(source) as zf:
            members = {name: zf.read(name) for name in names}
        return {name: json.loads(data) if name.endswith(".json") else data for name, data in members.items()}
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError, zlib.error, EOFError) as exc:
        raise ValueError(f"{label} is not a {what} ({exc})") from None


@dataclass
class Dataset:
    """Arrays read from disk: ``X``, labels ``y`` (or None), class names, skipped files, and for a
    folder the image files read, one per row of ``X`` (``None`` for an array file)."""

    X: np.ndarray
    y: np.ndarray | None = None
    class_names: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] | None = None
    left_out: int = 0  # image files left out as listed in a synthaug manifest (its grid not counted)


def _is_grey(rgb: np.ndarray) -> bool:
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _common_channels(images: list, converted: list) -> list:
    """Give the images read through RGBA (LA, palette, CMYK, ... modes; ``converted``) one channel
    count for the whole folder, losing nothing: the count of the folder's other images where
    they agree on one, else 4 if any is transparent, 1 if all are grey, 3 otherwise. An image
    that the count would cut (a transparent one among RGB images) keeps RGBA and is refused as
    a mix by the caller."""
    native = {1 if im.ndim == 2 else im.shape[-1] for im, c in zip(images, converted) if not c}
    rgba = [im for im, c in zip(images, converted) if c]
    if len(native) == 1:
        target = native.pop()
    else:
        opaque = all((im[..., 3] == 255).all() for im in rgba)
        target = 4 if not opaque else (1 if all(_is_grey(im) for im in rgba) else 3)

    def fit(im):
        opaque = (im[..., 3] == 255).all()
        if target == 3 and opaque:
            return im[..., :3]
        if target == 1 and opaque and _is_grey(im):
            return im[..., 0]
        return im

    return [fit(im) if c else im for im, c in zip(images, converted)]


def _read_image(path: Path, image_size: tuple[int, int] | None = None) -> tuple[np.ndarray, bool]:
    """The image's array and whether it was converted to RGBA (see :func:`_common_channels`)."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        if img.mode == "F":
            raise ValueError("32-bit float images are not supported; save them as 8- or 16-bit images, "
                             "or as a .npy array")
        converted = img.mode not in ("1", "L", "I;16", "I;16B", "I", "RGB", "RGBA")
        if img.mode == "1":  # bilevel: grey 0 / 255
            arr = np.asarray(img.convert("L"))
        elif converted:  # LA, palette, CMYK, ...: all of it, channels settled per folder
            arr = np.asarray(img.convert("RGBA"))
        else:
            arr = np.asarray(img)
    if not arr.dtype.isnative:  # I;16B: big-endian uint16, as uint16 like every other 16-bit image
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype == np.int32:  # mode "I" of 16-bit TIFF/PNG
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(f"32-bit integer image with values {arr.min()}..{arr.max()} beyond 16 bits; "
                             "save it as a .npy array")
        arr = arr.astype(np.uint16)
    if image_size is not None and arr.shape[:2] != tuple(image_size):
        arr = resize_image(arr, image_size)
    return arr, converted


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize one (H, W) or (H, W, C) image to ``size`` = (height, width), keeping its dtype.

    Each channel is resampled in 32-bit float (Pillow's mode "F", bicubic), so 16-bit images
    keep their depth, then rounded and clipped back to the integer dtype's range.
    """
    from PIL import Image

    height, width = (int(s) for s in size)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive; got {size}")
    planes = image[..., None] if image.ndim == 2 else image
    out = np.stack([np.asarray(Image.fromarray(planes[..., c].astype(np.float32), mode="F")
                               .resize((width, height), Image.Resampling.BICUBIC))
                    for c in range(planes.shape[-1])], axis=-1)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        out = np.clip(np.round(out), info.min, info.max)
    out = out.astype(image.dtype)
    return out[..., 0] if image.ndim == 2 else out


def listed_outputs(folder: Path, kind: str | None = None) -> set[str]:
    """The files (of ``kind``, or all) that a synthaug command listed in ``folder/manifest.json``,
    as relative paths inside ``folder``; nothing for a missing or malformed manifest."""
    import json

    try:
        files = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8")).get("files", [])
        names = {f["path"] for f in files if isinstance(f, dict) and isinstance(f.get("path"), str)
                 and (kind is None or f.get("kind") == kind)}
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, TypeError):
        return set()
    return {n for n in names if not Path(n).is_absolute() and ".." not in Path(n).parts}


def _images_under(folder: Path) -> list[Path]:
    """Image files anywhere under ``folder``, hidden files and folders left out."""
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in f.relative_to(folder).parts))


def read_data(path, image_size: tuple[int, int] | None = None, *,
              leave_out: tuple[str, ...] = ("grid",)) -> Dataset:
    """Read ``.npy`` / ``.npz`` arrays or a folder of images (PNG, JPEG, TIFF, BMP; 8 or 16 bit).

    A folder of images whose sub-folders hold the images gives one class per sub-folder (as
    ``keras.utils.image_dataset_from_directory`` does, images in nested folders included); a flat
    folder gives unlabelled images. Images beside class sub-folders are refused as ambiguous.
    Corrupt or unreadable images are skipped and listed in ``Dataset.skipped``.
    ``.npz`` files hold ``X`` and optionally ``y``. Images of different sizes are refused unless
    ``image_size=(height, width)`` is given, which resizes every image of another size to it
    (:func:`resize_image`); arrays are never resized. Hidden files are ignored, and so are the
    files a synthaug output folder's ``manifest.json`` lists with a kind in ``leave_out`` (its
    sample grid by default; ``("grid", "real")`` leaves out an ``augment`` folder's real copies
    too), which ``Dataset.left_out`` counts.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_file():
        if path.suffix.lower() not in (".npy", ".npz"):
            raise ValueError(f"{path}: expected a folder of images, a .npy or a .npz file")
        try:
            if path.suffix.lower() == ".npy":
                ds = Dataset(np.load(path, allow_pickle=False))
            else:
                with np.load(path, allow_pickle=False) as npz:
                    if "X" not in npz:
                        raise ValueError(f"{path} has no array named 'X' (found: {sorted(npz.files)})")
                    ds = Dataset(npz["X"], npz["y"] if "y" in npz else None)
        except (ValueError, OSError, EOFError) as exc:
            if str(path) in str(exc):
                raise
            # numpy's messages name neither the file nor a reason a caller can act on (its advice
            # is allow_pickle, which synthaug never uses: object arrays can run code when loaded).
            raise ValueError(f"{path} is not a readable numeric {path.suffix} array file (object arrays "
                             f"are not read): {exc.__class__.__name__}") from exc
        if ds.X.ndim < 2:
            raise ValueError(f"the array in {path} has shape {ds.X.shape}; expected samples along the first "
                             "axis: (n, d) tabular rows or (n, H, W[, C]) images")
        return ds
    # e.g. a synthaug output folder's picture of its samples is not data
    listed = set().union(*(listed_outputs(path, kind) for kind in leave_out))

    def kept(files):
        return [f for f in files if f.relative_to(path).as_posix() not in listed]

    top_level = sorted(f for f in path.iterdir()
                       if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    # A class's images may sit in nested folders under it, as image_dataset_from_directory allows.
    groups = [(d.name, _images_under(d)) for d in subdirs]
    counted = set().union(*(listed_outputs(path, kind) for kind in leave_out if kind != "grid"))
    n_left_out = sum(f.relative_to(path).as_posix() in counted
                     for f in top_level + [f for _, files in groups for f in files])
    top_level, groups = kept(top_level), [(name, kept(files)) for name, files in groups]
    if not top_level and not any(files for _, files in groups):
        # a synthaug output folder of samples PNG cannot hold (generate's samples.npz, augment --format npy)
        arrays = sorted(name for name in listed_outputs(path) - listed
                        if Path(name).suffix.lower() in (".npy", ".npz") and (path / name).is_file())
        if len(arrays) == 1:
            return read_data(path / arrays[0])
        if arrays:
            raise ValueError(f"{path} holds no images but the arrays {arrays} that its manifest.json lists; "
                             "pass the one you mean")
    class_names = [name for name, files in groups if files]
    if class_names and top_level:
        raise ValueError(f"{path} holds {len(top_level)} image(s) beside its class sub-folders (e.g. "
                         f"{top_level[0].name}); move them into a class folder, or use a flat folder")
    if not class_names:
        groups, class_names = [(None, top_level)], None
    images, converted, labels, skipped, read = [], [], [], [], []
    for label, files in groups:
        for f in files:
            try:
                image, was_converted = _read_image(f, image_size)
                images.append(image)
                converted.append(was_converted)
                labels.append(label)
                read.append(f)
            except Exception as exc:  # PIL raises many kinds for a corrupt file
                skipped.append((str(f), f"{type(exc).__name__}: {exc}"))
    if not images:
        raise ValueError(f"{path} holds no readable images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if any(converted):
        images = _common_channels(images, converted)

    def examples(key) -> str:
        """One file per distinct ``key(image)``, e.g. "(8, 8): a/1.png, (8, 8, 3): b/2.png"."""
        first = {}
        for image, f in zip(images, read):
            first.setdefault(key(image), f.relative_to(path).as_posix())
        return ", ".join(f"{k}: {name}" for k, name in sorted(first.items(), key=lambda kv: str(kv[0]))[:4])

    shapes = {im.shape for im in images}
    if len({s[:2] for s in shapes}) > 1:
        raise ValueError(f"images in {path} have different sizes ({examples(lambda im: im.shape)}); resize them to "
                         "one size (image_size=(height, width); on the command line --resize HxW)")
    if len(shapes) > 1:
        raise ValueError(f"images in {path} mix channel counts ({examples(lambda im: im.shape)}; grey and colour, "
                         "or colour with and without alpha?); convert them to one mode first")
    if len({im.dtype for im in images}) > 1:
        raise ValueError(f"images in {path} mix bit depths ({examples(lambda im: im.dtype.name)}); "
                         "convert them to one depth first")
    X = np.stack(images)
    y = np.asarray(labels) if class_names else None
    return Dataset(X, y, class_names, skipped, read, left_out=n_left_out)


def png_writable(X: np.ndarray) -> bool:
    """Whether a batch (N, H, W[, C]) can be written as PNG files: uint8 grey or colour, uint16
    grey (Pillow writes no 16-bit colour PNG, and reads one back as 8-bit)."""
    if X.ndim == 3 or (X.ndim == 4 and X.shape[-1] == 1):
        return X.dtype in (np.uint8, np.uint16)
    return X.ndim == 4 and X.shape[-1] in (3, 4) and X.dtype == np.uint8


def encode_png(image: np.ndarray, pnginfo=None) -> bytes:
    """Encode one (H, W), (H, W, 1) or (H, W, 3/4) uint8/uint16 image as PNG bytes, with the text
    chunks of a Pillow ``PngInfo`` if given."""
    from PIL import Image

    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", pnginfo=pnginfo)
    return buf.getvalue()


def _signed_png_info(record, key, name: str, image: np.ndarray, ed25519_private_key=None):
    """PNG text chunks holding ``record`` signed for this one output; (info, output entry, signed record)."""
    from synthaug.provenance import record as provenance

    entry = {"name": name, "sha256": provenance.content_hash(image)}
    signed = provenance.sign_record({**record, "output": entry}, key, ed25519_private_key=ed25519_private_key)
    return provenance.png_info(signed), entry, signed


def _write_sidecar(out_dir: Path, record, key, outputs: list, ed25519_private_key=None) -> Path:
    from synthaug.provenance import record as provenance

    signed = provenance.sign_record({**record, "outputs": outputs}, key, ed25519_private_key=ed25519_private_key)
    return atomic_write_bytes(out_dir / provenance.SIDECAR_NAME, provenance.sidecar_bytes(signed))


def to_display_uint8(X: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Scale any numeric image batch to uint8 0..255 for viewing."""
    X = np.asarray(X, dtype=np.float64)
    lo = X.min() if lo is None else lo
    hi = X.max() if hi is None else hi
    return np.clip(np.rint((X - lo) / max(hi - lo, 1e-12) * 255), 0, 255).astype(np.uint8)


def tile_images(images: np.ndarray, n_cols: int = 10) -> np.ndarray:
    """One uint8 picture of images (N, H, W[, C]) in rows of ``n_cols``, with 1-pixel white gaps."""
    n = len(images)
    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    h, w = images.shape[1:3]
    grid = np.full((n_rows * (h + 1) + 1, n_cols * (w + 1) + 1) + images.shape[3:], 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, n_cols)
        grid[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = image
    return grid


def sample_grid(X: np.ndarray, path, *, n_cols: int = 10, scale: int = 4, overwrite: bool = False,
                record: dict | None = None, key=None, ed25519_private_key=None) -> Path:
    """Write a PNG grid of image samples (N, H, W[, C]) enlarged ``scale`` times; with a provenance
    ``record`` (see :func:`write_samples`) the PNG carries it, signed with ``key`` (and
    ``ed25519_private_key`` if given)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    X = np.asarray(X)
    if X.ndim == 2:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ValueError(f"cannot show tabular samples with {X.shape[1]} features as images")
        X = X.reshape(-1, side, side)
    if X.ndim == 4 and X.shape[-1] == 1:
        X = X[..., 0]
    grid = tile_images(to_display_uint8(X), n_cols)
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    info = None if record is None else _signed_png_info(record, key, path.name, grid, ed25519_private_key)[0]
    return atomic_write_bytes(path, encode_png(grid, info))


def _write_frame(frame, y, out_dir: Path, record, key, c2pa_signer, ed25519_private_key) -> Path:
    """A DataFrame's rows as ``samples.csv`` (labels in a last column ``y``), listed by hash of the
    file's bytes in ``provenance.json``."""
    import hashlib

    if c2pa_signer is not None:
        raise ValueError("C2PA manifests go into PNG images; DataFrame samples are written as samples.csv, "
                         "which cannot carry one (their record is provenance.json)")
    if y is not None:
        label = next(name for name in ("y", "y_", "label", "_label") if name not in frame.columns)
        frame = frame.assign(**{label: np.asarray(y)})
    data = frame.to_csv(index=False).encode("utf-8")
    path = atomic_write_bytes(out_dir / "samples.csv", data)
    if record is not None:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()  # of the file: a CSV has no pixels to hash
        _write_sidecar(out_dir, record, key, [{"name": "samples.csv", "sha256": digest}], ed25519_private_key)
    return path


def class_folder(label) -> str:
    """The name of ``label``'s folder in a written image folder (``str(label)``), or a ValueError
    saying why it cannot be one: it must stay inside the output folder and be read back as a class."""
    name = str(label)
    why = None
    if not name:
        why = "it is empty"
    elif name in (".", ".."):
        why = "it names a folder that already exists"
    elif any(sep in name for sep in ("/", "\\", "\0")):
        why = "it holds a path separator, which would write outside its folder"
    elif name.startswith("."):
        why = "a folder name starting with '.' is hidden, and left out when the folder is read"
    if why is not None:
        raise ValueError(f"label {label!r} cannot name a class folder ({why}); image samples are written one "
                         "folder per label: rename the class, or save the samples as arrays (numpy.savez)")
    return name


def write_samples(X: np.ndarray, out_dir, *, y=None, prefix: str = "synthetic", overwrite: bool = False,
                  progress: bool = False, record: dict | None = None, key=None, c2pa_signer=None,
                  ed25519_private_key=None) -> list[Path]:
    """Write samples to ``out_dir``: images as PNG files (one sub-folder per label), tabular data
    and images PNG cannot hold (16-bit colour, floats, signed integers) as ``samples.npz``, a
    DataFrame (from a generator fitted on one) as ``samples.csv`` with its column names. Refuses a non-empty ``out_dir`` unless ``overwrite=True``; ``progress``
    shows a bar while image files are written.

    With a provenance ``record`` (:func:`synthaug.provenance.build_record`), each PNG carries it
    in a text chunk, signed (:func:`synthaug.provenance.sign_record` with ``key``) together with
    that image's pixel hash, and ``provenance.json`` in ``out_dir`` lists every output's hash
    (the only record of tabular samples). The sidecar is not in the returned list. With an
    ``ed25519_private_key`` (32 raw bytes or a cryptography ``Ed25519PrivateKey``, needs the
    ``signing`` extra) every record also carries an Ed25519 signature, which verifiers holding the
    public key can pin (``verify(..., ed25519_public_key=...)``).

    With a ``c2pa_signer`` (:class:`synthaug.provenance.content_credentials.C2paSigner`, needs the
    ``c2pa`` extra), each PNG also carries a signed C2PA manifest: created by a trained
    algorithm, with that image's signed record as an assertion."""
    if isinstance(X, tuple):  # what a conditional generator's generate returns
        raise TypeError("X is a tuple, like the (X, y) a conditional generator's generate returns; "
                        "pass the samples and their labels apart: write_samples(X, out_dir, y=y)")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; pass overwrite=True to write into it")
    from synthaug.tabular import is_dataframe

    if is_dataframe(X):
        return [_write_frame(X, y, out_dir, record, key, c2pa_signer, ed25519_private_key)]
    X = np.asarray(X)
    written = []
    is_image = png_writable(X)
    if c2pa_signer is not None:  # checked before anything is written
        from synthaug.provenance.content_credentials import require_c2pa

        require_c2pa()
        if not is_image:
            raise ValueError(f"C2PA manifests go into PNG images; {X.dtype} samples of shape {X.shape} are written "
                             "as samples.npz, which cannot carry one (their record is provenance.json)")
    if not is_image:
        buf = io.BytesIO()
        np.savez(buf, X=X, **({} if y is None else {"y": np.asarray(y)}))
        written = [atomic_write_bytes(out_dir / "samples.npz", buf.getvalue())]
        if record is not None:
            from synthaug.provenance.record import content_hash

            _write_sidecar(out_dir, record, key, [{"name": "samples.npz", "sha256": content_hash(X)}],
                           ed25519_private_key)
        return written
    width = len(str(len(X)))
    labels = None if y is None else np.asarray(y).tolist()
    folders = None if y is None else {label: class_folder(label) for label in dict.fromkeys(labels)}
    out_dir_existed = out_dir.exists()
    from tqdm.auto import tqdm

    outputs = []
    try:
        for i, image in enumerate(tqdm(X, desc="write", unit="file", disable=not progress, leave=False)):
            name = f"{prefix}_{i:0{width}d}.png"
            if folders is not None:
                name = f"{folders[labels[i]]}/{name}"
            info = signed = None
            if record is not None:
                info, entry, signed = _signed_png_info(record, key, name, image, ed25519_private_key)
                outputs.append(entry)
            png = encode_png(image, info)
            if c2pa_signer is not None:
                from synthaug.provenance.content_credentials import sign_png

                png = sign_png(png, c2pa_signer, record=signed, title=Path(name).name)
            written.append(atomic_write_bytes(out_dir / name, png))
    except BaseException:  # Ctrl-C or a failure: no half-written set of samples left behind
        for path in written:
            path.unlink(missing_ok=True)
        made = {p.parent for p in written if p.parent != out_dir} | (set() if out_dir_existed else {out_dir})
        for folder in sorted(made, key=lambda p: -len(p.parts)):
            try:
                folder.rmdir()  # only if this call left it empty
            except OSError:
                pass
        raise
    if record is not None:
        _write_sidecar(out_dir, record, key, outputs, ed25519_private_key)
    return written
