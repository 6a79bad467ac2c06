"""toyviz.image.data: digits and stacked digits, and the real readers on tiny fake MNIST IDX, CIFAR-10 pickle and
image-folder files; a missing or malformed file names what was expected where; a hostile pickle runs no code."""
import builtins
import gzip
import os
import pickle
import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from toyviz.image.config import ImageDataConfig
from toyviz.image.data import StackedDigits, load_digits, make_image_data, resize_uint8, to_float


def _idx(path, array, gz):
    a = np.asarray(array, np.uint8)
    raw = bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + a.tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def _fake_mnist(folder, gz):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        _idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz)
        _idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz)


def test_digits_upscaled_in_range_with_fixed_split():
    d = load_digits(16)
    assert d.train.shape == (1438, 1, 16, 16) and d.test.shape == (359, 1, 16, 16)
    assert d.train.dtype == torch.uint8 and d.n_classes == 10
    x, y = d.sample(32, torch.Generator().manual_seed(0))
    assert x.shape == (32, 1, 16, 16) and y.shape == (32,)
    assert -1.0 <= x.min() and x.max() <= 1.0
    assert torch.equal(load_digits(16).train, d.train)              # the split does not depend on the run
    assert float(d.class_prior.sum()) == pytest.approx(1.0)


def test_stacked_digits_label_is_the_three_channels_digits():
    digits = load_digits(16)
    s = StackedDigits(digits)
    g = torch.Generator().manual_seed(3)
    x, y = s.sample(200, g)
    assert x.shape == (200, 3, 16, 16) and s.n_classes == 1000 and s.channels == 3
    # look every channel up among the single digits: its label is the matching digit of the stacked label
    flat = to_float(digits.train).flatten(1)
    for i in range(5):
        for c, place in enumerate((100, 10, 1)):
            j = int((flat == x[i, c].flatten()).all(1).nonzero()[0])
            assert int(digits.train_labels[j]) == int(y[i]) // place % 10
    p = s.class_prior
    assert p.shape == (1000,) and float(p.sum()) == pytest.approx(1.0)
    assert float(p[123]) == pytest.approx(float(digits.class_prior[1] * digits.class_prior[2] * digits.class_prior[3]))


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_reader(tmp_path, gz):
    _fake_mnist(tmp_path, gz)
    d = make_image_data(ImageDataConfig(name="mnist", path=str(tmp_path), image_size=28))
    assert d.train.shape == (12, 1, 28, 28) and d.test.shape == (5, 1, 28, 28)
    assert d.train_labels.tolist() == [i % 10 for i in range(12)]
    d16 = make_image_data(ImageDataConfig(name="mnist", path=str(tmp_path), image_size=16))
    assert d16.train.shape == (12, 1, 16, 16)


def test_mnist_missing_and_malformed_files(tmp_path):
    with pytest.raises(ValueError, match=r"expected train-images-idx3-ubyte or train-images-idx3-ubyte.gz in"):
        make_image_data(ImageDataConfig(name="mnist", path=str(tmp_path), image_size=28))
    _fake_mnist(tmp_path, False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03junk")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte is not an IDX file of unsigned bytes with 1 dim"):
        make_image_data(ImageDataConfig(name="mnist", path=str(tmp_path), image_size=28))
    _idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(4), False)
    with pytest.raises(ValueError, match="t10k has 5 images but 4 labels"):
        make_image_data(ImageDataConfig(name="mnist", path=str(tmp_path), image_size=28))


def _cifar_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        pickle.dump({b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
                     b"labels": list(rng.integers(0, 10, n))}, f)


def test_cifar10_pickle_reader(tmp_path):
    for i in range(1, 6):
        _cifar_batch(tmp_path / f"data_batch_{i}", 4, i)
    with pytest.raises(ValueError, match=r"expected test_batch \(a CIFAR-10 python batch\) in"):
        make_image_data(ImageDataConfig(name="cifar10", path=str(tmp_path), image_size=32))
    _cifar_batch(tmp_path / "test_batch", 3, 9)
    d = make_image_data(ImageDataConfig(name="cifar10", path=str(tmp_path), image_size=32))
    assert d.train.shape == (20, 3, 32, 32) and d.test.shape == (3, 3, 32, 32) and d.channels == 3
    with open(tmp_path / "data_batch_1", "rb") as f:
        first = pickle.load(f)[b"data"][0].reshape(3, 32, 32)
    assert np.array_equal(d.train[0].numpy(), first)                  # channel-major rows, no resize at 32
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3 is not a CIFAR-10 python batch"):
        make_image_data(ImageDataConfig(name="cifar10", path=str(tmp_path), image_size=32))


class _Hostile:
    """A pickle that runs `call(*args)` when a plain `pickle.load` reads it."""

    def __init__(self, call, args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


@pytest.mark.parametrize("how", ["os.system", "builtins.open"])
def test_cifar10_refuses_a_pickle_that_would_run_code(tmp_path, how):
    marker = tmp_path / "marker"
    hostile = (_Hostile(os.system, (f"touch {marker}",)) if how == "os.system"
               else _Hostile(builtins.open, (str(marker), "w")))
    data = tmp_path / "cifar"
    data.mkdir()
    for name in [f"data_batch_{i}" for i in range(2, 6)] + ["test_batch"]:
        _cifar_batch(data / name, 2, 0)
    with open(data / "data_batch_1", "wb") as f:
        pickle.dump({b"data": hostile, b"labels": [1, 2]}, f)
    with pytest.raises(ValueError) as e:
        make_image_data(ImageDataConfig(name="cifar10", path=str(data), image_size=32))
    assert not marker.exists()                            # nothing the file asked for ran
    message = str(e.value)
    assert "data_batch_1 is not a CIFAR-10 python batch" in message and "refused" in message
    assert len(message.splitlines()) == 1


def test_cifar10_reads_numpy_1_names_and_python_ints(tmp_path):
    """A batch as CIFAR-10 ships it names numpy.core.multiarray (numpy 1) and holds its labels as Python ints."""
    x = np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072)
    raw = pickle.dumps({b"data": x, b"labels": [3, 7], b"batch_label": b"b", b"filenames": [b"a.png", b"b.png"]},
                       protocol=3)                        # protocol 3 names globals as text lines
    raw = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray" in raw
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (tmp_path / name).write_bytes(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = make_image_data(ImageDataConfig(name="cifar10", path=str(tmp_path), image_size=32))
    assert np.array_equal(d.train[:2].reshape(2, -1).numpy(), x) and d.test_labels.tolist() == [3, 7]


def test_image_folder_reader(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        iio.imwrite(tmp_path / f"im{i}.png", rng.integers(0, 256, (20, 30, 3)).astype(np.uint8))
    iio.imwrite(tmp_path / "grey.png", np.full((16, 16), 255, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    d = make_image_data(ImageDataConfig(name="folder", path=str(tmp_path), image_size=16))
    assert d.channels == 3 and len(d.train) + len(d.test) == 6 and d.n_classes is None
    x, y = d.sample(4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 16, 16) and y is None
    (tmp_path / "broken.png").write_bytes(b"\x89PNG nonsense")
    with pytest.raises(ValueError, match="cannot read .*broken.png as an image"):
        make_image_data(ImageDataConfig(name="folder", path=str(tmp_path), image_size=16))


def test_empty_folder_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match="expected at least 2 images"):
        make_image_data(ImageDataConfig(name="folder", path=str(tmp_path), image_size=16))
    with pytest.raises(ValueError, match="is not a folder"):
        make_image_data(ImageDataConfig(name="cifar10", path=str(tmp_path / "nope"), image_size=32))


def test_resize_keeps_a_constant_image_constant():
    x = np.full((2, 1, 8, 8), 200, np.uint8)
    assert torch.equal(resize_uint8(x, 16), torch.full((2, 1, 16, 16), 200, dtype=torch.uint8))
    assert torch.equal(resize_uint8(np.full((1, 3, 32, 32), 7, np.uint8), 16), torch.full((1, 3, 16, 16), 7,
                                                                                            dtype=torch.uint8))
