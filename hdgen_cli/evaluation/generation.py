"""Generation metrics: Frechet distance and Inception Score on the features and class probabilities
of an Inception network or of a classifier checkpoint (Heusel et al. 2017; Salimans et al. 2016).

    FD = ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1^1/2 S_2 S_1^1/2)^1/2)      (float64)
    IS = exp( E_x KL(p(y|x) || p(y)) ), averaged over `splits` disjoint splits

`tr((S_1 S_2)^1/2)` is computed as the sum of the square roots of the eigenvalues of the symmetric
PSD matrix S_1^1/2 S_2 S_1^1/2, which avoids the complex sqrtm of a non-symmetric product.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from hdgen_cli import progress
from hdgen_cli.data import from_model_range, to_uint8, unit_to_model_range
from hdgen_cli.errors import DataError, HdgenError
from hdgen_cli.interop.reading import read_tensors_file

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's port of the TF1 FID Inception
INCEPTION_ENV = "HDGEN_INCEPTION_WEIGHTS"


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = features.double()
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (len(f) - 1)


def _psd_sqrt(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(mu1, s1, mu2, s2) -> float:
    root = _psd_sqrt(s1)
    cross = torch.linalg.eigvalsh(root @ s2 @ root).clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * cross)


def inception_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over `splits` splits of exp(mean KL(p(y|x) || p(y)))."""
    scores = []
    for part in probs.double().chunk(splits):
        marginal = part.mean(0, keepdim=True)
        kl = (part * (part.clamp(min=1e-30).log() - marginal.clamp(min=1e-30).log())).sum(1).mean()
        scores.append(math.exp(float(kl)))
    t = torch.tensor(scores)
    return float(t.mean()), float(t.std()) if len(scores) > 1 else 0.0


def load_inception(weights: str | Path | None = None, device="cpu"):
    """The FID Inception (pytorch-fid) with its 1008-way head: from `weights`, $HDGEN_INCEPTION_WEIGHTS,
    or the torch hub cache (downloaded when online). Offline and absent: one DataError naming the file.

    The weights file is a pickle. pytorch-fid would unpickle it in full (`weights_only=False`);
    hdgen reads it tensors-only, as it reads the official codes' checkpoints (`read_tensors_file`),
    and hands pytorch-fid that state dict."""
    import pytorch_fid.inception as fid  # deferred: pulls in scipy and torchvision

    weights = weights or os.environ.get(INCEPTION_ENV)
    if weights is not None:
        where = Path(weights).expanduser()
        if not where.is_file():
            raise DataError(f"Inception weights {where} not found; pass the {INCEPTION_FILE} file")
    else:
        where = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    hint = (f"download {INCEPTION_FILE} and pass --inception-weights FILE (or set {INCEPTION_ENV}), "
            "or use --features CKPT for a classifier's features offline")
    if not where.is_file():  # fetch quietly ourselves, so offline is one error line and no progress noise
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(fid.FID_WEIGHTS_URL, str(where), progress=False)
        except OSError as exc:  # URLError is an OSError
            raise DataError(f"cannot download the FID Inception weights to {where} ({type(exc).__name__}); {hint}") from None
    try:
        state = read_tensors_file(where)
    except HdgenError as exc:  # an unpickling refusal, a truncated file, a zip error ...
        raise DataError(f"cannot load the FID Inception weights: it is not a tensors-only {INCEPTION_FILE} "
                        f"({exc}); {hint}") from None
    loader = fid.load_state_dict_from_url
    fid.load_state_dict_from_url = lambda *args, **kwargs: state
    try:
        net = fid.fid_inception_v3()
    except RuntimeError as exc:  # the file holds another network's tensors
        raise DataError(f"{where} does not hold the FID Inception weights ({str(exc).splitlines()[0]}); {hint}") from None
    finally:
        fid.load_state_dict_from_url = loader
    return net.to(device).eval()


class InceptionFeatures:
    """u in [0, 1] -> (2048-d pool3 features, 1008-way softmax), bilinear resize to 299 as pytorch-fid."""

    name = "inception-pool3"

    def __init__(self, net):
        self.net = net

    @torch.no_grad()
    def __call__(self, u: torch.Tensor):
        x = F.interpolate(u, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        pooled = []
        handle = self.net.avgpool.register_forward_hook(lambda _m, _i, out: pooled.append(out.flatten(1)))
        try:
            logits = self.net(x)
        finally:
            handle.remove()
        return pooled[0], logits.softmax(1)


class ClassifierFeatures:
    """u in [0, 1] -> (phi(x), p(y|x)) of a classifier checkpoint: an offline stand-in for Inception."""

    def __init__(self, model, pixel_range: str, name: str):
        self.model, self.pixel_range, self.name = model, pixel_range, name

    @torch.no_grad()
    def __call__(self, u: torch.Tensor):
        x = unit_to_model_range(u, self.pixel_range)
        return self.model.backbone.features(x), self.model.scores(x).softmax(1)


def embed(extractor, images_u8: torch.Tensor, device, batch_size: int = 100):
    """(features [N, D], probabilities [N, K]) of uint8 images, on CPU in float64."""
    feats, probs = [], []
    with progress.stage("embed", total=-(-len(images_u8) // batch_size), unit="batches") as shown:
        for start in range(0, len(images_u8), batch_size):
            u = images_u8[start:start + batch_size].to(device).float() / 255.0
            f, p = extractor(u)
            feats.append(f.double().cpu())
            probs.append(p.double().cpu())
            shown.advance()
    return torch.cat(feats), torch.cat(probs)


def build_extractor(features, inception_weights: str | Path | None, device):
    """A loaded classifier's (phi, p(y|x)) when `features` (a `LoadedModel`) is given, else the FID Inception."""
    if features is None:
        return InceptionFeatures(load_inception(inception_weights, device))
    return ClassifierFeatures(features.model, features.info.pixel_range, f"classifier:{features.checkpoint.path}")


class LiveFID:
    """FID of replay-buffer images against the training set during training (the reference statistics
    are computed once). Buffer chains are not fresh samples: this tracks progress, it is not a protocol."""

    def __init__(self, extractor, train_images_u8: torch.Tensor, n: int, device):
        self.extractor, self.n, self.device = extractor, n, device
        self.reference = gaussian_stats(embed(extractor, train_images_u8, device)[0])

    def __call__(self, buffer_images: torch.Tensor, pixel_range: str) -> float:
        idx = torch.randperm(len(buffer_images), device=buffer_images.device)[:self.n]
        feats, _ = embed(self.extractor, to_uint8(from_model_range(buffer_images[idx], pixel_range)), self.device)
        return frechet_distance(*gaussian_stats(feats), *self.reference)
