"""MNIST-style idx files (LeCun's format) read without torchvision: MNIST and Fashion-MNIST offline.

An idx file is a big-endian header (two zero bytes, a type code, the number of dimensions, one
uint32 per dimension) followed by the raw array. Both datasets ship four such files, gzipped or
not: train/t10k images (uint8, N x 28 x 28) and labels (uint8, N). They are found in the data
root's `<name>/` folder, torchvision's `<Class>/raw/` layout, or (Fashion-MNIST) where Debian's
`dataset-fashion-mnist` package installs them.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from hdgen_cli.errors import DataError

UBYTE = 0x08
PREFIX = {"train": "train", "test": "t10k"}
TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
SYSTEM_FOLDERS = {"fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")]}
APT_PACKAGE = {"fashion-mnist": "dataset-fashion-mnist"}


def candidate_folders(name: str, root: Path) -> list[Path]:
    """Where the idx files of `name` may be, in the order they are tried."""
    # Not the bare root: MNIST and Fashion-MNIST files have the same names, so a folder of their own says which.
    return [root / name, root / TORCHVISION_FOLDER[name] / "raw", *SYSTEM_FOLDERS.get(name, [])]


def _file(folder: Path, stem: str) -> Path | None:
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def find_split(name: str, root: Path, split: str) -> tuple[Path, Path] | None:
    """(images, labels) idx paths of one split in the first folder that holds both, else None."""
    prefix = PREFIX[split]
    for folder in candidate_folders(name, root):
        images = _file(folder, f"{prefix}-images-idx3-ubyte")
        labels = _file(folder, f"{prefix}-labels-idx1-ubyte")
        if images and labels:
            return images, labels
    return None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """One uint8 idx array with `ndim` dimensions; a malformed file is a one-line DataError."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}; delete it and fetch the dataset again") from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[0:2] != b"\0\0" or raw[2] != UBYTE or raw[3] != ndim:
        raise DataError(f"{path} is not a {ndim}-dimensional uint8 idx file; delete it and fetch the dataset again")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != int(np.prod(shape)):
        raise DataError(f"{path} holds {len(raw) - header} bytes after its header, not {int(np.prod(shape))} "
                        f"for shape {shape}; the file is truncated, fetch it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_idx_split(name: str, root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """uint8 images [N, 1, 28, 28] and long labels [N] of one split, or None when no files are found."""
    found = find_split(name, root, split)
    if found is None:
        return None
    images, labels = read_idx(found[0], 3), read_idx(found[1], 1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{found[0]} holds {images.shape[0]} images but {found[1]} {labels.shape[0]} labels; "
                        f"the two files are from different sets, fetch them again")
    if labels.size and int(labels.max()) > 9:
        raise DataError(f"{found[1]} has label {int(labels.max())}; {name} has classes 0-9")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def not_found_message(name: str, root: Path) -> str:
    """The one line a user sees when no idx files of `name` are found."""
    apt = APT_PACKAGE.get(name)
    offline = f"apt-get install {apt}, " if apt else ""
    return (f"{name} not found in {root / name}, {root / TORCHVISION_FOLDER[name] / 'raw'} "
            f"{'or ' + str(SYSTEM_FOLDERS[name][0]) + ' ' if name in SYSTEM_FOLDERS else ''}"
            f"(the four idx files, .gz or not): {offline}run again with --download (needs internet), "
            f"or put them in one of those folders (--data-dir DIR)")
