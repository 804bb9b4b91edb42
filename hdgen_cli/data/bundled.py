"""scikit-learn's bundled 8x8 digits: the offline dataset."""

from __future__ import annotations

import torch

from hdgen_cli.config.schema import DataConfig
from hdgen_cli.data.imageset import ImageSet

TEST_FRACTION = 0.2
# Fixed seed, deliberately not data.split_seed: the test set must be the same for every run.
TEST_SPLIT_SEED = 0


def load_digits(cfg: DataConfig, split: str) -> ImageSet:
    """1797 grayscale 8x8 digits (values 0..16 scaled to 0..255); a fixed 20% test split."""
    from sklearn.datasets import load_digits as sk_load_digits  # deferred: sklearn takes ~1 s to import

    bunch = sk_load_digits()
    values = torch.as_tensor(bunch.images, dtype=torch.float64)  # [N, 8, 8], 0..16
    images = (values * 255.0 / 16.0).round().clamp(0, 255).to(torch.uint8).unsqueeze(1)
    labels = torch.as_tensor(bunch.target, dtype=torch.long)

    n = images.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(TEST_SPLIT_SEED))
    n_test = round(TEST_FRACTION * n)
    idx = perm[:n_test] if split == "test" else perm[n_test:]
    idx = idx.sort().values  # keep the original order inside each split
    # Digits are not mirror-symmetric, so flipping would teach the model wrong images.
    return ImageSet(images[idx], labels[idx], num_classes=10, name="digits", default_flip=False)
