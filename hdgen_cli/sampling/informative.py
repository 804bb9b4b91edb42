"""Informative initialisation: a per-class Gaussian mixture fitted to the training data
([JEM++] eq. 14).

    p0(x) = sum_c pi_c N(mu_c, Sigma_c + 1e-4 I),   pi_c = N_c / N

mu_c and the biased covariance Sigma_c = (1/N_c) sum_i (x_i - mu_c)(x_i - mu_c)^T are computed in
float64 from non-augmented, noise-free training images in the model range. Draws are clamped to
the data range. Two exact samplers:
- "full":    x = mu_c + L_c eps,  L_c = chol(Sigma_c + 1e-4 I)  (cached, C*D*D floats);
- "lowrank": x = mu_c + N_c^{-1/2} Xc_c^T xi + 0.01 eps,  Xc_c the centred class data, xi ~ N(0, I_Nc);
  the same distribution without a D x D matrix (CIFAR-100: 100 covariances would be 3.8 GB).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from hdgen_cli.data import ImageSet, to_model_range
from hdgen_cli.errors import DataError
from hdgen_cli.files import write_atomically
from hdgen_cli.sampling.init import register_init

RIDGE = 1e-4
FULL_LIMIT_BYTES = 1 << 30  # above this the Cholesky factors would not fit comfortably: use low rank


def class_rows(data: ImageSet, pixel_range: str) -> list[torch.Tensor]:
    """Each class's flattened images in the model range, float64 [N_c, D]."""
    if data.num_classes == 0:
        raise DataError(f"{data.name} is unlabelled; the gm init needs class labels (use sampler.buffer.init=uniform)")
    x = to_model_range(data.images, pixel_range).flatten(1).double()
    rows = [x[data.labels == c] for c in range(data.num_classes)]
    for c, xc in enumerate(rows):
        if len(xc) == 0:
            raise DataError(f"class {c} of {data.name} has no training images; the gm init needs every class")
    return rows


def class_statistics(data: ImageSet, pixel_range: str) -> dict[str, torch.Tensor]:
    """Per-class counts, means [C, D] and biased covariances [C, D, D], all float64."""
    counts, means, covs = [], [], []
    for xc in class_rows(data, pixel_range):
        mu = xc.mean(0)
        centred = xc - mu
        counts.append(len(xc))
        means.append(mu)
        covs.append(centred.T @ centred / len(xc))
    return {"counts": torch.tensor(counts, dtype=torch.float64), "means": torch.stack(means), "covs": torch.stack(covs)}


def data_signature(data: ImageSet) -> str:
    """Short content hash of a split: the cache is reused only for exactly the same images."""
    h = hashlib.sha256()
    h.update(data.images.cpu().numpy().tobytes())
    h.update(data.labels.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class GaussianMixtureInit:
    def __init__(self, means: torch.Tensor, counts: torch.Tensor, shape, bounds, device,
                 chol: torch.Tensor | None = None, centred: list[torch.Tensor] | None = None):
        self.shape, self.bounds, self.device = tuple(shape), bounds, device
        self.means = means.to(device, torch.float32)
        self.probs = (counts / counts.sum()).to(device, torch.float32)
        # Row-major always: cholesky returns column-major factors, a cached one is row-major, and the
        # two layouts take different matmul paths (last-bit differences would break exact resume).
        self.chol = chol.to(device, torch.float32).contiguous() if chol is not None else None
        self.centred = [c.to(device, torch.float32) for c in centred] if centred is not None else None

    @property
    def mode(self) -> str:
        return "full" if self.chol is not None else "lowrank"

    def __call__(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:  # a reinit draw: c ~ pi
            labels = torch.multinomial(self.probs, n, replacement=True)
        labels = labels.to(self.device)
        d = self.means.shape[1]
        out = torch.empty(n, d, device=self.device)
        for c in torch.unique(labels).tolist():
            where = (labels == c).nonzero(as_tuple=True)[0]
            k = len(where)
            if self.chol is not None:
                out[where] = self.means[c] + torch.randn(k, d, device=self.device) @ self.chol[c].T
            else:
                xc = self.centred[c]
                xi = torch.randn(k, xc.shape[0], device=self.device)
                # ridge 1e-4 I as 0.01 * eps: Var = Xc^T Xc / Nc + 1e-4 I = Sigma_c + 1e-4 I exactly
                out[where] = self.means[c] + xi @ xc / xc.shape[0] ** 0.5 + RIDGE**0.5 * torch.randn(k, d, device=self.device)
        return out.view(n, *self.shape).clamp(*self.bounds)


def _from_cache(path: Path, shape, bounds, device) -> GaussianMixtureInit:
    cached = load_file(str(path))
    return GaussianMixtureInit(cached["means"], cached["counts"], shape, bounds, device, chol=cached["chol"])


def _cache_file(cache_dir: Path, data: ImageSet) -> Path:
    return cache_dir / f"gm-{data.name.replace(':', '_').replace('/', '_')}-{data_signature(data)}.safetensors"


@register_init("gm")
def gaussian_mixture_init(shape, bounds, device, train_set: ImageSet | None = None, pixel_range: str = "symmetric",
                          cache_dir: str | Path | None = None, load_train_set=None, **_):
    """Build the mixture from `train_set` (non-augmented uint8 images), caching the full form's factors.

    Without a training set (sampling from a checkpoint) the single cached mixture in `cache_dir`
    (the run directory) is used, else `load_train_set()` provides the data.
    """
    if train_set is None:
        cached = sorted(Path(cache_dir).glob("gm-*.safetensors")) if cache_dir is not None else []
        if len(cached) == 1:
            return _from_cache(cached[0], shape, bounds, device)
        if load_train_set is None:
            raise DataError(f"no cached gm statistics in {cache_dir}; make the training data available (--data-dir)")
        train_set = load_train_set()
    c, d = train_set.num_classes, int(torch.tensor(shape).prod())
    if c * d * d * 4 > FULL_LIMIT_BYTES:
        rows = class_rows(train_set, pixel_range)
        means = torch.stack([xc.mean(0) for xc in rows])
        counts = torch.tensor([len(xc) for xc in rows], dtype=torch.float64)
        return GaussianMixtureInit(means, counts, shape, bounds, device, centred=[xc - mu for xc, mu in zip(rows, means)])
    path = _cache_file(Path(cache_dir), train_set) if cache_dir is not None else None
    if path is not None and path.is_file():
        return _from_cache(path, shape, bounds, device)
    stats = class_statistics(train_set, pixel_range)
    # Statistics are computed where the training images live (the GPU during training).
    eye = torch.eye(d, dtype=torch.float64, device=stats["covs"].device)
    chol = torch.linalg.cholesky(stats["covs"] + RIDGE * eye)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        cache = {"means": stats["means"], "counts": stats["counts"], "chol": chol.float()}
        write_atomically(path, lambda tmp: save_file({k: v.cpu().contiguous() for k, v in cache.items()}, str(tmp)))
    return GaussianMixtureInit(stats["means"], stats["counts"], shape, bounds, device, chol=chol)
