"""Image data sets with no download: scikit-learn's digits and stacked digits (1,000 modes), and readers for the
user's local MNIST IDX files, CIFAR-10 python batches and folders of images. Pixels in [−1, 1], (N, C, S, S).
CIFAR-10 batches are pickles: they are read by a restricted unpickler that builds numpy arrays and plain values
only, so a hostile file in the data folder runs no code.

Images are stored as uint8 at the requested size; `sample(n, generator, split)` draws a batch through an explicit
`torch.Generator`, so a seed fixes the data stream.
"""
from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.data import device_copies
from .config import ImageDataConfig

try:                        # numpy 2 moved numpy.core to numpy._core (the old name warns); pickles use either
    from numpy._core import multiarray as _multiarray
except ImportError:         # numpy 1
    from numpy.core import multiarray as _multiarray

SPLIT_SEED = 1234          # the digits train/test split is fixed, so a cached classifier stays valid across runs


def resize_uint8(images: np.ndarray, size: int, chunk: int = 4096) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8, bilinear (antialiased when shrinking)."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.shape[-1] == size and x.shape[-2] == size:
        return x.clone()
    out = []
    for i in range(0, len(x), chunk):
        y = F.interpolate(x[i:i + chunk].float(), size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < x.shape[-1])
        out.append(y.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [−1, 1]."""
    return x.float() / 127.5 - 1.0


class ImageData:
    """Train and test images (uint8, (N, C, S, S)) with optional labels; `n_classes` None when unlabelled.

    `class_prior` (n_classes,) is the label distribution of the training split (p*(y) of the MODE score)."""

    def __init__(self, name, train, train_labels, test, test_labels, n_classes):
        self.name, self.n_classes = name, n_classes
        self.train, self.test = train, test
        self.train_labels, self.test_labels = train_labels, test_labels

    @property
    def channels(self) -> int:
        return self.train.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.shape[-1]

    @property
    def class_prior(self):
        if self.train_labels is None:
            return None
        counts = torch.bincount(self.train_labels, minlength=self.n_classes).double()
        return counts / counts.sum()

    def sample(self, n: int, generator: torch.Generator, split: str = "train"):
        """(x (n, C, S, S) float in [−1, 1], labels (n,) or None)."""
        images, labels = (self.train, self.train_labels) if split == "train" else (self.test, self.test_labels)
        idx = torch.randint(len(images), (n,), generator=generator, device=generator.device)
        images, labels = device_copies(self, generator.device, split, [images, labels])
        return to_float(images[idx]), None if labels is None else labels[idx]


class StackedDigits(ImageData):
    """Three digits as the three channels: 1,000 classes, label = 100·a + 10·b + c (Che et al. 2017's compositional
    benchmark; later papers' Stacked MNIST). Composed on the fly from the single-channel digits."""

    def __init__(self, digits: ImageData):
        super().__init__("stacked-digits", digits.train, digits.train_labels, digits.test, digits.test_labels, 1000)
        self.digits = digits

    @property
    def channels(self) -> int:
        return 3

    @property
    def class_prior(self):
        p = self.digits.class_prior                                        # (10,)
        return (p[:, None, None] * p[None, :, None] * p[None, None, :]).reshape(-1)

    def sample(self, n: int, generator: torch.Generator, split: str = "train"):
        images, labels = (self.train, self.train_labels) if split == "train" else (self.test, self.test_labels)
        idx = torch.randint(len(images), (n, 3), generator=generator, device=generator.device)
        images, labels = device_copies(self, generator.device, split, [images, labels])
        x = images[idx][:, :, 0]                                           # (n, 3, S, S)
        y = labels[idx]                                                    # (n, 3)
        return to_float(x), y[:, 0] * 100 + y[:, 1] * 10 + y[:, 2]


# ---- readers ---------------------------------------------------------------------------------------------------
def _split(n: int, test_fraction: float):
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return perm[n_test:], perm[:n_test]


def load_digits(size: int, test_fraction: float = 0.2) -> ImageData:
    """scikit-learn's 1,797 handwritten digits (8×8, values 0..16), upscaled to size×size."""
    from sklearn.datasets import load_digits as sk_digits
    d = sk_digits()
    img = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]   # (1797, 1, 8, 8)
    x, y = resize_uint8(img, size), torch.as_tensor(d.target, dtype=torch.long)
    tr, te = _split(len(x), test_fraction)
    return ImageData("digits", x[tr], y[tr], x[te], y[te], 10)


def _open_maybe_gz(folder: Path, stem: str):
    for name in (stem, stem + ".gz"):
        p = folder / name
        if p.exists():
            return p, (gzip.open(p, "rb") if name.endswith(".gz") else open(p, "rb"))
    raise ValueError(f"mnist: expected {stem} or {stem}.gz in {folder}")


def read_idx(folder: Path, stem: str, ndim: int) -> np.ndarray:
    """An IDX file (LeCun's MNIST format): magic 0x0000 08 ndim, ndim big-endian int32 sizes, then uint8 data."""
    path, f = _open_maybe_gz(folder, stem)
    with f:
        raw = f.read()
    if len(raw) < 4 + 4 * ndim or raw[:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] != ndim:
        raise ValueError(f"mnist: {path} is not an IDX file of unsigned bytes with {ndim} dimensions")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(bytearray(raw), np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"mnist: {path} holds {data.size} bytes of data but its header says {dims}")
    return data.reshape(dims)


def load_mnist(path: str, size: int) -> ImageData:
    """train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (.gz or not)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"mnist: data.path {folder} is not a folder (expected the four IDX files in it)")
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(folder, f"{prefix}-images-idx3-ubyte", 3)
        y = read_idx(folder, f"{prefix}-labels-idx1-ubyte", 1)
        if len(x) != len(y):
            raise ValueError(f"mnist: {folder}: {prefix} has {len(x)} images but {len(y)} labels")
        if y.size and y.max() > 9:
            raise ValueError(f"mnist: {folder}: {prefix} labels must be digits 0..9")
        parts[split] = (resize_uint8(x[:, None], size), torch.as_tensor(y.astype(np.int64)))
    return ImageData("mnist", *parts["train"], *parts["test"], 10)


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a global that the format it claims to be never holds."""


class CifarUnpickler(pickle.Unpickler):
    """Builds only what a CIFAR-10 python batch holds: dicts, lists, bytes, strings and numbers (no lookup needed)
    and numpy arrays (`_reconstruct`, `ndarray`, `dtype`; `scalar` too, for labels a numpy user wrote as numpy
    integers). Any other global a file names (os.system, builtins.open, ...) is refused before it is imported or
    called: a plain `pickle.load` would run whatever the file asks for."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise RefusedGlobal(f"{module}.{name}")
        return getattr(np if module == "numpy" else _multiarray, name)


def _read_cifar_batch(p: Path):
    if not p.exists():
        raise ValueError(f"cifar10: expected {p.name} (a CIFAR-10 python batch) in {p.parent}")
    try:
        with open(p, "rb") as f:
            d = CifarUnpickler(f, encoding="bytes").load()
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(d[b"labels"], dtype=np.int64)
    except RefusedGlobal as e:
        raise ValueError(f"cifar10: {p} is not a CIFAR-10 python batch: it names {e}, which a batch never holds "
                         f"(refused, not run: a pickle can run code)") from None
    except Exception as e:
        raise ValueError(f"cifar10: {p} is not a CIFAR-10 python batch (a pickled dict with b'data' (N, 3072) "
                         f"uint8 and b'labels'): {type(e).__name__}") from None
    if len(x) != len(y) or (y.size and (y.min() < 0 or y.max() > 9)):
        raise ValueError(f"cifar10: {p}: {len(x)} images, {len(y)} labels; labels must be 0..9")
    return x, y


def load_cifar10(path: str, size: int) -> ImageData:
    """data_batch_1 .. data_batch_5 and test_batch in `path` (the cifar-10-batches-py folder)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"cifar10: data.path {folder} is not a folder (expected data_batch_1..5 and test_batch)")
    batches = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    xt, yt = _read_cifar_batch(folder / "test_batch")
    x, y = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    return ImageData("cifar10", resize_uint8(x, size), torch.as_tensor(y), resize_uint8(xt, size),
                     torch.as_tensor(yt), 10)


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def load_folder(path: str, size: int, test_fraction: float = 0.2) -> ImageData:
    """Every image file in `path` (not recursive), centre-cropped to a square and resized; RGB unless all grey."""
    import imageio.v3 as iio
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"folder: data.path {folder} is not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if len(files) < 2:
        raise ValueError(f"folder: expected at least 2 images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}, "
                         f"found {len(files)}")
    images = []
    for p in files:
        try:
            a = np.asarray(iio.imread(p, index=0, plugin="pillow"))
        except Exception as e:
            raise ValueError(f"folder: cannot read {p} as an image ({type(e).__name__})") from None
        if a.ndim == 3 and a.shape[-1] == 4:
            a = a[..., :3]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (1, 3)):
            raise ValueError(f"folder: {p} has shape {a.shape}; expected H×W, H×W×1, H×W×3 or H×W×4")
        if a.dtype != np.uint8:
            a = np.clip(a.astype(np.float64) / max(float(a.max()), 1.0) * 255, 0, 255).astype(np.uint8)
        a = a[..., None] if a.ndim == 2 else a
        h, w = a.shape[:2]
        s = min(h, w)
        a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        images.append(resize_uint8(a.transpose(2, 0, 1)[None], size)[0])
    grey = all(im.shape[0] == 1 for im in images)
    x = torch.stack([im if grey or im.shape[0] == 3 else im.expand(3, -1, -1) for im in images])
    tr, te = _split(len(x), test_fraction)
    return ImageData("folder", x[tr], None, x[te], None, None)


def make_image_data(cfg: ImageDataConfig) -> ImageData:
    s = cfg.image_size
    if cfg.name == "digits":
        return load_digits(s, cfg.test_fraction)
    if cfg.name == "stacked-digits":
        return StackedDigits(load_digits(s, cfg.test_fraction))
    if cfg.name == "mnist":
        return load_mnist(os.path.expanduser(cfg.path), s)
    if cfg.name == "cifar10":
        return load_cifar10(os.path.expanduser(cfg.path), s)
    if cfg.name == "folder":
        return load_folder(os.path.expanduser(cfg.path), s, cfg.test_fraction)
    raise ValueError(f"data.name must be one of digits, stacked-digits, mnist, cifar10, folder (got {cfg.name!r})")
