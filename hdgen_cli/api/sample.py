"""`api.sample`: samples from a checkpoint, unconditional, for a class, or conditioned on images (CLEL)."""

from __future__ import annotations

import secrets
from pathlib import Path

import torch
import torch.nn.functional as F

from hdgen_cli.data import from_model_range, make_splits
from hdgen_cli.data.folder import read_images
from hdgen_cli.data.strong_aug import StrongAugment
from hdgen_cli.errors import UsageError
from hdgen_cli.loading import LoadedModel, load_encoder, load_model, with_sampler
from hdgen_cli.parts import build_buffer, build_p0, build_sampler
from hdgen_cli.sampling import generate, generate_class


def latent_conditions(loaded: LoadedModel, paths: list[str], device) -> torch.Tensor:
    """One unit latent per path for CLEL's conditional sampling: z = normalised sum over the path's
    images of h(t(x)), with the EMA encoder h and one strong augmentation t per image ([CLEL] §4.3)."""

    info = loaded.info
    encoder = load_encoder(loaded, device)
    augment, zs = StrongAugment(), []
    with torch.no_grad():
        for path in paths:
            u = read_images(path, info.channels, info.image_size).to(device).float() / 255.0
            zs.append(F.normalize(F.normalize(encoder(augment(u)), dim=1).sum(0), dim=0))
    return torch.stack(zs)


def sample(path: str | Path | LoadedModel, n: int = 64, steps: int | None = None, y: int | None = None, init: str = "noise",
           device: str = "auto", seed: int | None = None, batch_size: int = 64, inject: bool = False,
           like: list[str] | None = None, beta_c: float | None = None, conditional: str | None = None):
    """`n` samples from a checkpoint's model with its training sampler, `steps` steps each.

    init "noise": fresh chains from the preset's p0; "buffer": chains from the saved replay buffer.
    Returns (images in [0, 1], labels or None, details dict). `path` may be an already loaded
    model. A checkpoint trained without a sampler is sampled as `with_sampler` says. `inject` switches a GMMC sampler to noise-injected
    latents ([GMMC] eq. 10). `like` (CLEL) conditions on images: one path is instance- or set-
    conditional, several compose their energies, E = ||f||^2/2 - beta_c sum_a cos(g, z_a).
    `conditional` (with `y`): "filter", JEM's protocol of keeping the unconditional chains the model
    classifies as y (the default), or "energy", chains on E(x, y) (GMMC's latent-target sampler is
    its paper's conditional sampler, so GMMC defaults to it).
    """
    loaded = path if isinstance(path, LoadedModel) else load_model(path, device)
    cfg, info = with_sampler(loaded.config), loaded.info
    if y is not None and not loaded.model.has_classifier:  # before any chain runs
        raise UsageError(f"{cfg.name} has no classes to sample; condition on images with --like")
    if y is not None and not 0 <= y < max(info.num_classes, 0):
        raise UsageError(f"--class {y} is out of range; this model has classes 0..{info.num_classes - 1}")
    if seed is None:  # drawn, then recorded, so any sample can be redrawn with --seed
        seed = secrets.randbelow(2**31)
    torch.manual_seed(seed)
    if inject:
        if cfg.sampler.name != "gmmc":
            raise UsageError(f"--gmmc-inject needs a GMMC checkpoint; this one samples with {cfg.sampler.name}")
        cfg = cfg.model_copy(update={"sampler": cfg.sampler.model_copy(update={"latent": "injected"})})
    if conditional is not None and y is None:
        raise UsageError("--conditional chooses how a class is sampled; it needs --class")
    if conditional is None:
        conditional = "energy" if cfg.sampler.name == "gmmc" else "filter"
    if conditional not in ("filter", "energy"):
        raise UsageError(f"unknown --conditional '{conditional}'; use filter or energy")
    sampler = build_sampler(cfg.sampler, info)
    steps = cfg.sampler.steps if steps is None else steps
    dev = next(loaded.model.parameters()).device
    if init not in ("noise", "buffer"):
        raise UsageError(f"unknown --init '{init}'; use noise or buffer")
    # Data-driven inits (gm) use the statistics cached in the run directory, else the training split.
    context = {"cache_dir": loaded.checkpoint.path.parent, "load_train_set": lambda: make_splits(cfg.data).train}
    buffer = None
    if init == "buffer":
        if "buffer.images" not in loaded.checkpoint.tensors:
            raise UsageError(f"{loaded.checkpoint.path} has no replay buffer; use --init noise")
        buffer = build_buffer(cfg, info, dev, **context)
        buffer.load_state_dict(loaded.checkpoint.section("buffer"))
        p0 = buffer.init
    else:
        p0 = build_p0(cfg, info, dev, **context)
    energy_fn = None
    if like:
        if y is not None:
            raise UsageError("use either --class or --like, not both")
        z = latent_conditions(loaded, like, dev)
        energy_fn = lambda inp: loaded.model.conditional_energy(inp, z, beta_c)  # noqa: E731
    kept = {}
    if y is not None and conditional == "filter":
        images, kept = generate_class(loaded.model, sampler, n, steps, p0, y, buffer=buffer, batch_size=batch_size)
        labels = torch.full((len(images),), y, dtype=torch.long)
    else:
        images, labels = generate(loaded.model, sampler, n, steps, p0, buffer=buffer, y=y, batch_size=batch_size,
                                  num_classes=info.num_classes, energy_fn=energy_fn)
    details = {"n": len(images), "steps": steps, "init": init, "class": y, "seed": seed, "sampler": cfg.sampler.name,
               **({"conditional": conditional, **kept} if y is not None else {}),
               **({"latent": cfg.sampler.latent} if cfg.sampler.name == "gmmc" else {}),
               **({"like": list(like), "beta_c": loaded.model.beta if beta_c is None else beta_c} if like else {}),
               "checkpoint": str(loaded.checkpoint.path)}
    return from_model_range(images, info.pixel_range), labels, details
