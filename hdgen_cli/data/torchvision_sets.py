"""torchvision datasets: cifar10, cifar100, svhn, mnist, fashion-mnist, celeba.

Each loader turns torchvision's own storage into one uint8 [N, C, H, W] tensor. Missing files and
failed downloads become a one-line DataError naming the dataset, the directory and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from hdgen_cli.config.schema import DataConfig
from hdgen_cli.data import idx
from hdgen_cli.data.imageset import ImageSet
from hdgen_cli.errors import DataError
from hdgen_cli.files import write_atomically

DEFAULT_DATA_DIR = "~/.cache/hdgen/data"
CELEBA_CROP = 140  # centre crop of the 178x218 aligned faces before the resize
CELEBA_DEFAULT_SIZE = 32

# What a user can put in the data directory instead of downloading (named in the error line).
_EXPECTED = {
    "cifar10": "cifar-10-batches-py/",
    "cifar100": "cifar-100-python/",
    "svhn": "train_32x32.mat and test_32x32.mat",
    "mnist": "MNIST/raw/",
    "fashion-mnist": "FashionMNIST/raw/",
    "celeba": "celeba/ (img_align_celeba/ and its .txt files)",
}


def data_root(cfg: DataConfig) -> Path:
    """cfg.data_dir, else $HDGEN_DATA_DIR, else ~/.cache/hdgen/data."""
    raw = cfg.data_dir or os.environ.get("HDGEN_DATA_DIR") or DEFAULT_DATA_DIR
    return Path(raw).expanduser()


def _open(name: str, cfg: DataConfig, build):
    """Construct a torchvision dataset; turn every failure into one DataError line."""
    root = data_root(cfg)
    hint = _EXPECTED[name]
    try:
        if cfg.download:
            root.mkdir(parents=True, exist_ok=True)
        return build(str(root), cfg.download)
    except Exception as exc:  # noqa: BLE001 - torchvision raises RuntimeError, URLError, OSError, zip/tar errors...
        if not cfg.download:
            raise DataError(
                f"{name} not found in {root}: run again with --download (needs internet) "
                f"or put {hint} there (--data-dir DIR)"
            ) from None
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise DataError(
            f"{name} download to {root} failed ({reason}): check the internet connection "
            f"or put {hint} there (--data-dir DIR)"
        ) from None


def _cifar(name: str, num_classes: int):
    def load(cfg: DataConfig, split: str) -> ImageSet:
        from torchvision import datasets  # deferred: torchvision is slow to import

        cls = datasets.CIFAR10 if num_classes == 10 else datasets.CIFAR100
        ds = _open(name, cfg, lambda root, dl: cls(root, train=split == "train", download=dl))
        images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()  # HWC -> CHW
        labels = torch.as_tensor(ds.targets, dtype=torch.long)
        return ImageSet(images, labels, num_classes, name, default_flip=True)

    return load


load_cifar10 = _cifar("cifar10", 10)
load_cifar100 = _cifar("cifar100", 100)


def load_svhn(cfg: DataConfig, split: str) -> ImageSet:
    from torchvision import datasets  # deferred: torchvision is slow to import

    ds = _open("svhn", cfg, lambda root, dl: datasets.SVHN(root, split=split, download=dl))
    images = torch.from_numpy(np.ascontiguousarray(ds.data))  # already [N, 3, 32, 32]
    labels = torch.as_tensor(ds.labels, dtype=torch.long)  # torchvision maps label 10 -> 0
    # House numbers are digits: mirroring them makes wrong images.
    return ImageSet(images, labels, 10, "svhn", default_flip=False)


def _mnist_like(name: str):
    """MNIST / Fashion-MNIST from their idx files; torchvision only fetches them (--download)."""

    def load(cfg: DataConfig, split: str) -> ImageSet:
        root = data_root(cfg)
        found = idx.load_idx_split(name, root, split)
        if found is None and cfg.download:
            from torchvision import datasets  # deferred: torchvision is slow to import

            cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
            _open(name, cfg, lambda r, dl: cls(r, train=split == "train", download=dl))  # writes <Class>/raw/
            found = idx.load_idx_split(name, root, split)
        if found is None:
            raise DataError(idx.not_found_message(name, root))
        images, labels = found
        return ImageSet(images, labels, 10, name, default_flip=False)

    return load


load_mnist = _mnist_like("mnist")
load_fashion_mnist = _mnist_like("fashion-mnist")


def load_celeba(cfg: DataConfig, split: str) -> ImageSet:
    """CelebA faces, unlabelled (OOD only): centre-crop 140x140, then resize to a square.

    The crop keeps the aspect ratio square; resizing the 178x218 original directly distorts the
    faces (and a one-number resize of it gives non-square 39x32 images).
    """
    from torchvision import datasets  # deferred: torchvision is slow to import

    size = cfg.image_size or CELEBA_DEFAULT_SIZE
    root = data_root(cfg)
    cache = root / "celeba" / f"hdgen_{split}_{size}.safetensors"
    if cache.is_file():
        images = load_file(str(cache))["images"]  # safetensors: the cache is data, never code
    else:
        ds = _open("celeba", cfg, lambda r, dl: datasets.CelebA(r, split=split, target_type=[], download=dl))
        images = torch.stack([_celeba_image(ds, i, size) for i in range(len(ds))])
        try:  # decoding ~20k JPEGs is slow; caching is a convenience, a read-only dir is fine
            write_atomically(cache, lambda tmp: save_file({"images": images.contiguous()}, str(tmp)))
        except OSError:
            pass
    labels = torch.zeros(images.shape[0], dtype=torch.long)
    return ImageSet(images, labels, num_classes=0, name="celeba", default_flip=True)


def _celeba_image(ds, index: int, size: int) -> torch.Tensor:
    img, _ = ds[index]
    img = img.convert("RGB")
    w, h = img.size
    left, top = (w - CELEBA_CROP) // 2, (h - CELEBA_CROP) // 2
    img = img.crop((left, top, left + CELEBA_CROP, top + CELEBA_CROP))
    img = img.resize((size, size), Image.BILINEAR)  # PIL's bilinear filter antialiases when shrinking
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
