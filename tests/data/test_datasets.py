"""Offline tests of hdgen_cli.data: datasets, splits, transforms, streams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hdgen_cli.config.schema import DataConfig
from hdgen_cli.data import (
    BatchStream,
    BatchTransform,
    ImageSet,
    data_bounds,
    from_model_range,
    list_datasets,
    load_dataset,
    make_splits,
    to_model_range,
)
from hdgen_cli.errors import DataError, UsageError


def _toy(n=10, c=1, s=8) -> ImageSet:
    images = torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8)
    return ImageSet(images, torch.arange(n) % 3, 3, "toy", True)


# --- datasets -------------------------------------------------------------------------------

def test_digits_shapes_and_fixed_test_split():
    train = load_dataset(DataConfig(name="digits"), "train")
    test = load_dataset(DataConfig(name="digits", split_seed=99), "test")
    test_again = load_dataset(DataConfig(name="digits", split_seed=7), "test")
    assert train.images.shape[1:] == (1, 8, 8) and test.images.shape[1:] == (1, 8, 8)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert len(train) + len(test) == 1797
    assert train.num_classes == 10 and not train.default_flip
    assert int(torch.cat([train.images, test.images]).max()) == 255
    assert set(train.labels.tolist()) == set(range(10))
    assert torch.equal(test.images, test_again.images) and torch.equal(test.labels, test_again.labels)
    assert train.channels == 1 and train.image_size == 8


def test_image_size_resizes():
    data = load_dataset(DataConfig(name="digits", image_size=16), "test")
    assert data.images.shape[1:] == (1, 16, 16) and data.images.dtype == torch.uint8


def test_make_splits_reproducible_disjoint_covering():
    full = load_dataset(DataConfig(name="digits"), "train")
    a = make_splits(DataConfig(name="digits", n_valid=200, split_seed=1))
    b = make_splits(DataConfig(name="digits", n_valid=200, split_seed=1))
    c = make_splits(DataConfig(name="digits", n_valid=200, split_seed=2))
    assert len(a.valid) == 200 and len(a.train) == len(full) - 200
    assert torch.equal(a.valid.images, b.valid.images) and torch.equal(a.train.labels, b.train.labels)
    assert not torch.equal(a.valid.images, c.valid.images)
    # Rows of the full set, as bytes, identify images; train + valid must be exactly the original.
    key = lambda s: sorted(bytes(row) for row in s.images.flatten(1).numpy())  # noqa: E731
    assert sorted(key(a.train) + key(a.valid)) == key(full)
    assert make_splits(DataConfig(name="digits")).valid is None


def test_make_splits_n_valid_too_large():
    with pytest.raises(UsageError, match="n_valid"):
        make_splits(DataConfig(name="digits", n_valid=5000))


def test_unknown_dataset_suggests_close_name():
    with pytest.raises(UsageError, match="did you mean 'cifar10'") as info:
        load_dataset(DataConfig(name="cifar"), "train")
    assert "\n" not in str(info.value)
    assert {"digits", "cifar10", "celeba", "folder", "fashion-mnist"} <= set(list_datasets())


def test_cifar10_missing_without_download(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(name="cifar10", data_dir=str(tmp_path)), "train")
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path) in msg and "--download" in msg


def _png(path, color, size=6, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), color).save(path)


def test_folder_dataset(tmp_path):
    for i in range(5):
        _png(tmp_path / "cats" / f"{i}.png", (200, 10, 10))
        _png(tmp_path / "dogs" / f"{i}.png", (10, 10, 200))
    cfg = DataConfig(name="folder", data_dir=str(tmp_path))
    train, test = load_dataset(cfg, "train"), load_dataset(cfg, "test")
    assert len(train) + len(test) == 10 and len(test) == 2
    assert train.num_classes == 2 and train.images.shape[1:] == (3, 6, 6)
    for data in (train, test):  # cats (label 0) are red, dogs (label 1) blue
        red = data.images[:, 0, 0, 0] > data.images[:, 2, 0, 0]
        assert torch.equal(red, data.labels == 0)
    resized = load_dataset(DataConfig(name="folder", data_dir=str(tmp_path), image_size=4), "train")
    assert resized.images.shape[1:] == (3, 4, 4)


def test_folder_grayscale_explicit_splits_and_size_mismatch(tmp_path):
    for split in ("train", "test"):
        _png(tmp_path / split / "a" / "x.png", 30, mode="L")
        _png(tmp_path / split / "b" / "y.png", 220, mode="L")
    data = load_dataset(DataConfig(name="folder", data_dir=str(tmp_path)), "test")
    assert data.images.shape == (2, 1, 6, 6) and data.labels.tolist() == [0, 1]
    _png(tmp_path / "train" / "b" / "z.png", 100, size=9, mode="L")
    with pytest.raises(DataError, match="image_size"):
        load_dataset(DataConfig(name="folder", data_dir=str(tmp_path)), "train")


def test_folder_errors(tmp_path):
    with pytest.raises(DataError):
        load_dataset(DataConfig(name="folder", data_dir=str(tmp_path)), "train")
    with pytest.raises(UsageError, match="--data-dir"):
        load_dataset(DataConfig(name="folder"), "train")


# --- pixel ranges ---------------------------------------------------------------------------

def test_model_range_round_trip():
    u8 = torch.tensor([0, 128, 255], dtype=torch.uint8)
    assert to_model_range(u8, "symmetric")[[0, 2]].tolist() == [-1.0, 1.0]
    assert to_model_range(u8, "unit")[[0, 2]].tolist() == [0.0, 1.0]
    assert to_model_range(u8, "unit").dtype == torch.float32
    for r in ("symmetric", "unit"):
        back = (from_model_range(to_model_range(u8, r), r) * 255).round().to(torch.uint8)
        assert torch.equal(back, u8)
        lo, hi = data_bounds(r)
        assert from_model_range(torch.tensor([lo - 1, hi + 1]), r).tolist() == [0.0, 1.0]
    assert data_bounds("symmetric") == (-1.0, 1.0) and data_bounds("unit") == (0.0, 1.0)
    with pytest.raises(UsageError):
        to_model_range(u8, "bogus")


# --- transforms -----------------------------------------------------------------------------

def test_transform_identity_without_augment():
    x = _toy().images
    out = BatchTransform(False, 4, True, 0.0, "symmetric")(x)
    assert torch.equal(out, to_model_range(x, "symmetric"))


def test_transform_augment_shape_range_and_constant_images():
    x = _toy(64, 3, 8).images
    out = BatchTransform(True, 4, True, 0.0, "unit")(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    const = torch.arange(16, dtype=torch.uint8).mul(15)[:, None, None, None].expand(16, 3, 8, 8).contiguous()
    out = BatchTransform(True, 4, True, 0.0, "symmetric")(const)
    assert torch.equal(out, to_model_range(const, "symmetric"))


def test_transform_flip_false_never_mirrors():
    ramp = torch.arange(8, dtype=torch.uint8).mul(30).expand(32, 1, 8, 8).contiguous()
    out = BatchTransform(True, 0, False, 0.0, "unit")(ramp)
    assert torch.equal(out, to_model_range(ramp, "unit"))
    torch.manual_seed(0)
    flipped = BatchTransform(True, 0, True, 0.0, "unit")(ramp)
    mirrored = (flipped != to_model_range(ramp, "unit")).flatten(1).any(1)
    assert 0 < int(mirrored.sum()) < 32  # about half the samples flipped
    assert torch.equal(flipped[mirrored], to_model_range(ramp, "unit").flip(3)[mirrored])


def test_transform_noise_and_reproducibility():
    x = torch.full((256, 1, 8, 8), 128, dtype=torch.uint8)
    t = BatchTransform(True, 2, True, 0.1, "symmetric")
    out = t(x)
    assert abs(float((out - to_model_range(x, "symmetric")).std()) - 0.1) < 0.01
    data = _toy(32).images
    torch.manual_seed(3)
    a = t(data)
    torch.manual_seed(3)
    b = t(data)
    assert torch.equal(a, b)


# --- stream ---------------------------------------------------------------------------------

def test_stream_drop_last_and_epochs():
    data = _toy(10)
    stream = BatchStream(data, 3, BatchTransform(False, 0, False, 0.0, "unit"), seed=0)
    assert len(stream) == 3
    seen = []
    for _ in range(len(stream)):
        x, y = stream.next()
        assert x.shape == (3, 1, 8, 8) and y.dtype == torch.int64
        seen += [_row_index(data, row) for row in x]
    assert len(set(seen)) == 9 and stream.epoch == 1
    for _ in range(len(stream)):
        stream.next()
    assert stream.epoch == 2
    with pytest.raises(DataError, match="batch size"):
        BatchStream(data, 11, BatchTransform(False, 0, False, 0.0, "unit"), seed=0)


def _row_index(data: ImageSet, x: torch.Tensor) -> int:
    u8 = (x * 255).round().to(torch.uint8)
    return int(np.flatnonzero((data.images == u8).flatten(1).all(1).numpy())[0])


def test_stream_state_round_trip(tmp_path):
    data = _toy(17)
    t = BatchTransform(False, 0, False, 0.0, "unit")
    a = BatchStream(data, 4, t, seed=5)
    for _ in range(6):  # cross an epoch boundary
        a.next()
    state = a.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    safetensors = pytest.importorskip("safetensors.torch")  # checkpoints store the state this way
    safetensors.save_file(state, str(tmp_path / "s.safetensors"))
    b = BatchStream(data, 4, t, seed=123)
    b.load_state_dict(safetensors.load_file(str(tmp_path / "s.safetensors")))
    assert b.epoch == a.epoch
    for _ in range(10):
        (xa, ya), (xb, yb) = a.next(), b.next()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # Order does not depend on the global RNG.
    torch.manual_seed(0)
    c = BatchStream(data, 4, t, seed=5).next()[1]
    torch.manual_seed(1)
    assert torch.equal(c, BatchStream(data, 4, t, seed=5).next()[1])
