"""MNIST-style idx files: the reader, where it looks, its one-line errors, and real Fashion-MNIST
offline (Debian's dataset-fashion-mnist) when it is installed."""

import gzip
import json
import struct

import numpy as np
import pytest
import torch

from hdgen_cli.cli.app import run
from hdgen_cli.config.schema import DataConfig
from hdgen_cli.data import idx
from hdgen_cli.data.imageset import pad_u8
from hdgen_cli.data.registry import load_dataset
from hdgen_cli.errors import DataError

DEBIAN = idx.SYSTEM_FOLDERS["fashion-mnist"][0]
needs_fashion = pytest.mark.skipif(not (DEBIAN / "t10k-images-idx3-ubyte.gz").is_file(),
                                   reason="apt-get install dataset-fashion-mnist for real Fashion-MNIST")


def _write_idx(path, array: np.ndarray, compress: bool):
    header = bytes([0, 0, idx.UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if compress else raw)


def _fake_split(folder, split, n=7, compress=True):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    prefix = idx.PREFIX[split]
    suffix = ".gz" if compress else ""
    _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
    _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
    return images, labels


@pytest.mark.parametrize("layout,compress", [("fashion-mnist", True), ("FashionMNIST/raw", False), ("fashion-mnist", False)])
def test_reads_every_layout_gzipped_or_not(tmp_path, layout, compress):
    images, labels = _fake_split(tmp_path / layout, "test", compress=compress)
    data = load_dataset(DataConfig(name="fashion-mnist", data_dir=str(tmp_path)), "test")
    assert data.images.shape == (7, 1, 28, 28) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[:, 0], torch.from_numpy(images))
    assert data.labels.tolist() == labels.tolist() and data.num_classes == 10


def test_missing_files_name_the_package_and_download(tmp_path, monkeypatch):
    monkeypatch.setitem(idx.SYSTEM_FOLDERS, "fashion-mnist", [tmp_path / "no-debian"])
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(name="fashion-mnist", data_dir=str(tmp_path)), "train")
    msg = str(info.value)
    assert "\n" not in msg and "apt-get install dataset-fashion-mnist" in msg and "--download" in msg
    with pytest.raises(DataError, match="--download") as info:
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path)), "train")
    assert "apt-get" not in str(info.value)


def test_files_in_the_bare_root_are_not_taken_for_either_dataset(tmp_path, monkeypatch):
    """MNIST and Fashion-MNIST files share their names: only a folder named for one says which."""
    monkeypatch.setitem(idx.SYSTEM_FOLDERS, "fashion-mnist", [tmp_path / "no-debian"])
    _fake_split(tmp_path, "test")
    for name in ("mnist", "fashion-mnist"):
        with pytest.raises(DataError, match="not found"):
            load_dataset(DataConfig(name=name, data_dir=str(tmp_path)), "test")


def test_malformed_files_are_one_line_errors(tmp_path):
    _fake_split(tmp_path / "mnist", "test", compress=False)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated"):
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path)), "test")
    path.write_bytes(b"not an idx file at all")
    with pytest.raises(DataError, match="not a 3-dimensional uint8 idx"):
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path)), "test")
    _fake_split(tmp_path / "mnist", "test", n=7, compress=False)
    _write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", np.zeros(5, dtype=np.uint8), False)
    with pytest.raises(DataError, match="different sets"):
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path)), "test")
    gz = tmp_path / "gz" / "mnist"
    _fake_split(gz, "test", compress=True)
    damaged = bytearray((gz / "t10k-images-idx3-ubyte.gz").read_bytes())
    damaged[20:40] = b"\xff" * 20  # inside the deflate stream
    (gz / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path / "gz")), "test")


def test_pad_to_centres_and_leaves_larger_images():
    images = torch.full((2, 1, 28, 28), 200, dtype=torch.uint8)
    padded = pad_u8(images, 32)
    assert padded.shape == (2, 1, 32, 32)
    assert padded[:, :, 2:30, 2:30].eq(200).all() and padded.sum() == images.sum()
    assert pad_u8(images, 28) is images and pad_u8(images, 16) is images


def test_pad_then_resize(tmp_path):
    _fake_split(tmp_path / "mnist", "test")
    cfg = DataConfig(name="mnist", data_dir=str(tmp_path), pad_to=32)
    assert load_dataset(cfg, "test").images.shape[-2:] == (32, 32)
    cfg = DataConfig(name="mnist", data_dir=str(tmp_path), pad_to=32, image_size=16)
    assert load_dataset(cfg, "test").images.shape[-2:] == (16, 16)


@needs_fashion
def test_real_fashion_mnist_from_debian(tmp_path):
    cfg = DataConfig(name="fashion-mnist", data_dir=str(tmp_path))
    test, train = load_dataset(cfg, "test"), load_dataset(cfg, "train")
    assert len(test) == 10_000 and len(train) == 60_000
    assert torch.bincount(test.labels).tolist() == [1000] * 10


@needs_fashion
def test_quickstart_trains_on_fashion_mnist_offline(tmp_path, capsys):
    out = tmp_path / "run"
    code = run(["train", "-p", "quickstart", "--quiet", "--json", "--out", str(out), "data.name=fashion-mnist",
                "train.max_iters=3", f"data.data_dir={tmp_path / 'empty'}"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and (out / "last.safetensors").is_file()


def test_quickstart_without_fashion_mnist_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(idx.SYSTEM_FOLDERS, "fashion-mnist", [tmp_path / "no-debian"])
    out = tmp_path / "run"
    code = run(["train", "-p", "quickstart", "--quiet", "--out", str(out), "data.name=fashion-mnist",
                f"data.data_dir={tmp_path / 'empty'}"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and "dataset-fashion-mnist" in err and "Traceback" not in err
    assert not out.exists()
