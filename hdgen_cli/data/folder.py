"""A user's image folder as a dataset.

Layout: ROOT/CLASS/*.png (sorted sub-folder names are the classes), or ROOT/train/CLASS and
ROOT/test/CLASS for explicit splits. Image files directly in ROOT, with no class folders, make an
unlabelled set (num_classes 0), handy as an OOD set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from hdgen_cli.config.schema import DataConfig
from hdgen_cli.data.imageset import ImageSet
from hdgen_cli.errors import DataError, UsageError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
TEST_FRACTION = 0.2
SPLIT_SEED = 0  # fixed: the held-out test images must not depend on run seeds
_GRAY_MODES = {"1", "L"}


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_EXTENSIONS)


def _scan(root: Path) -> tuple[list[Path], list[str], list[str]]:
    """(files, class name per file, sorted class names); no classes when images lie in root."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and _visible(d))
    if not classes:
        files = _images_in(root)
        return files, [""] * len(files), []
    files, owners = [], []
    for c in classes:
        found = _images_in(root / c)
        files += found
        owners += [c] * len(found)
    return files, owners, classes


def load_folder(cfg: DataConfig, split: str) -> ImageSet:
    if cfg.data_dir is None:
        raise UsageError("data.name=folder needs --data-dir DIR (a folder with one sub-folder of images per class)")
    root = Path(cfg.data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist: pass an existing directory with --data-dir DIR")

    explicit = (root / "train").is_dir() and (root / "test").is_dir()
    if explicit:
        train = _scan(root / "train")
        test = _scan(root / "test")
        classes = train[2]
        unknown = sorted(set(test[2]) - set(classes))
        if unknown:
            raise DataError(f"{root / 'test'} has class folders missing from {root / 'train'}: {', '.join(unknown)}; add them to train/")
        all_files = train[0] + test[0]
        files, owners = (train[0], train[1]) if split == "train" else (test[0], test[1])
    else:
        all_files, all_owners, classes = _scan(root)
        n = len(all_files)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
        n_test = max(1, n // 5) if n > 1 else 0  # 80/20, but never an empty test split for n >= 2
        idx = (perm[:n_test] if split == "test" else perm[n_test:]).sort().values.tolist()
        files, owners = [all_files[i] for i in idx], [all_owners[i] for i in idx]

    if not all_files:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found under {root}: put one sub-folder of images per class there")

    # Keep one channel only when every image (all splits) is grayscale, so both splits agree.
    gray = all(_mode(p) in _GRAY_MODES for p in all_files)
    size = cfg.image_size or _native_size(all_files[0])
    class_index = {c: i for i, c in enumerate(classes)}
    images = torch.stack([_read(p, gray, size, resize=cfg.image_size is not None) for p in files]) if files \
        else torch.zeros((0, 1 if gray else 3, size, size), dtype=torch.uint8)
    labels = torch.tensor([class_index.get(o, 0) for o in owners], dtype=torch.long)
    return ImageSet(images, labels, num_classes=len(classes), name=f"folder:{root.name}", default_flip=True)


def _open(path: Path):
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {path} ({type(exc).__name__}): remove or replace the file") from None


def _mode(path: Path) -> str:
    with _open(path) as img:  # opening reads only the header, so this is cheap
        return img.mode


def _native_size(path: Path) -> int:
    with _open(path) as img:
        w, h = img.size
    if w != h:
        raise DataError(f"image {path} is {w}x{h}, not square: set data.image_size=N to resize every image to NxN")
    return w


def _read(path: Path, gray: bool, size: int, resize: bool) -> torch.Tensor:
    with _open(path) as img:
        try:
            img = img.convert("L" if gray else "RGB")
        except OSError as exc:
            raise DataError(f"cannot decode image {path} ({exc}): remove or replace the file") from None
        if resize:
            img = img.resize((size, size), Image.BILINEAR)  # PIL's bilinear antialiases when shrinking
        elif img.size != (size, size):
            w, h = img.size
            raise DataError(f"image {path} is {w}x{h}, others are {size}x{size}: set data.image_size={size} to resize them all")
        arr = np.asarray(img, dtype=np.uint8)
    arr = arr[None] if gray else arr.transpose(2, 0, 1)
    return torch.from_numpy(arr.copy())


def read_images(path: str | Path, channels: int, size: int) -> torch.Tensor:
    """uint8 [N, channels, size, size] from one image file or every image under a folder, converted
    to the model's channel count and resized to its size (conditions for `hdgen sample --like`)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path} not found: pass an image file or a folder of images")
    files = _images_in(path) if path.is_dir() else [path]
    if not files:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {path}")
    return torch.stack([_read(f, channels == 1, size, resize=True) for f in files])
