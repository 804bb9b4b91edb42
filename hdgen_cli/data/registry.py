"""Dataset registry, load_dataset and the train/valid/test splits (docs/methods/shared.md, data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from hdgen_cli.config.schema import DataConfig
from hdgen_cli.data import bundled, folder, shapes, torchvision_sets as tv
from hdgen_cli.data.imageset import ImageSet, pad_u8, resize_u8
from hdgen_cli.errors import DataError, UsageError
from hdgen_cli.registry import Registry

Loader = Callable[[DataConfig, str], ImageSet]

DATASETS: Registry[Loader] = Registry("dataset", "data.name")
for _name, _loader in {
    "digits": bundled.load_digits,
    "shapes": shapes.load_shapes,
    "cifar10": tv.load_cifar10,
    "cifar100": tv.load_cifar100,
    "svhn": tv.load_svhn,
    "mnist": tv.load_mnist,
    "fashion-mnist": tv.load_fashion_mnist,
    "celeba": tv.load_celeba,
    "folder": folder.load_folder,
}.items():
    DATASETS.register(_name, _loader)
SPLITS = ("train", "test")


def register_dataset(name: str, loader: Loader) -> None:
    """Add a dataset: loader(cfg, split) -> ImageSet with split 'train' or 'test'."""
    DATASETS.register(name, loader)


def list_datasets() -> list[str]:
    return DATASETS.names()


def _resolve(name: str) -> str:
    key = name.lower().replace("_", "-")  # accept FASHION_MNIST, fashion_mnist, ...
    return key if key in DATASETS and name not in DATASETS else name


def load_dataset(cfg: DataConfig, split: str) -> ImageSet:
    """Load one split ('train' or 'test') of cfg.name, padded to cfg.pad_to, then resized to cfg.image_size."""
    if split not in SPLITS:
        raise UsageError(f"unknown split '{split}': use one of {', '.join(SPLITS)}")
    data = DATASETS.get(_resolve(cfg.name))(cfg, split)
    if cfg.pad_to is not None and min(data.images.shape[-2:]) < cfg.pad_to:
        data = ImageSet(pad_u8(data.images, cfg.pad_to), data.labels, data.num_classes, data.name, data.default_flip)
    if cfg.image_size is not None and data.images.shape[-2:] != (cfg.image_size, cfg.image_size):
        data = ImageSet(resize_u8(data.images, cfg.image_size), data.labels, data.num_classes, data.name, data.default_flip)
    return data


@dataclass
class Splits:
    train: ImageSet
    valid: ImageSet | None
    test: ImageSet


def make_splits(cfg: DataConfig) -> Splits:
    """Train/test from the dataset; the first n_valid of a split_seed permutation of train is valid.

    JEM holds out 5000 of CIFAR's 50000 training images this way; the permutation uses its own
    generator so the split depends on data.split_seed alone. `cfg.n_valid` is a count, or a
    fraction of the training set when below 1 (0.1 of CIFAR is the official 5000).
    """
    train = load_dataset(cfg, "train")
    test = load_dataset(cfg, "test")
    for split, data in (("train", train), ("test", test)):
        if len(data) == 0:
            raise DataError(f"dataset {cfg.name} has an empty {split} split: add images or check --data-dir")
    valid = None
    n_valid = round(cfg.n_valid * len(train)) if isinstance(cfg.n_valid, float) else cfg.n_valid
    if n_valid > 0:
        if n_valid >= len(train):
            raise UsageError(
                f"data.n_valid={cfg.n_valid} leaves no training images: {cfg.name} has only {len(train)}; "
                f"set data.n_valid below {len(train)} or to a fraction such as 0.1"
            )
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.split_seed))
        # Sorted so each split keeps the dataset's order; only membership depends on the seed.
        valid = train.subset(perm[:n_valid].sort().values)
        train = train.subset(perm[n_valid:].sort().values)
    return Splits(train=train, valid=valid, test=test)
