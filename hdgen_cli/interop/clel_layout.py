"""The official CLEL checkpoint (`last.ckpt` / `best.ckpt`: {"model": JointModel.state_dict(), ...})
and hdgen's CLEL run.

The official `JointModel` holds four networks and the sampler's memory:
- `ebm.` / `ema_ebm.`: the SN-ResNet. `stem` = [Normalize, conv], `stages.i` = [AvgPool (i > 0),
  ResBlock x n], then `head` (the [c, 2048, 128] MLP, f(x)) and `projection` (g, no bias). hdgen's
  `clel_small` / `clel_base` hold the same tensors as `backbone.normalize`, `backbone.towers.0.stem`,
  one flat `backbone.towers.0.body` (the stages' contents in order, pools included),
  `backbone.mlp` and `projector.net`. Spectral norm uses the same parametrization names.
- `encoder.` / `ema_encoder.`: torchvision's ResNet-18 with `conv1` = [Normalize, conv], `layer1-4`
  (`downsample` shortcuts) and `fc` = [Linear, BatchNorm1d, ReLU, Linear]. hdgen's encoder calls
  them `normalize`, `conv1`, `layers.0-3` (`shortcut`) and `mlp`.
- `sampler.memory`: the 10 000-image replay buffer in [0, 1].
"""

from __future__ import annotations

import re

import torch

from hdgen_cli.errors import UsageError


def _stage_lengths(state: dict[str, torch.Tensor], prefix: str) -> list[int]:
    """Modules per official stage (a stage i > 0 starts with its parameter-free AvgPool)."""
    found: dict[int, int] = {}
    for key in state:
        m = re.match(rf"^{re.escape(prefix)}stages\.(\d+)\.(\d+)\.", key)
        if m:
            found[int(m[1])] = max(found.get(int(m[1]), 0), int(m[2]) + 1)
    return [found[i] for i in sorted(found)]


def _remap(state: dict[str, torch.Tensor], prefix: str, rename, what: str, where: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix`, renamed by `rename(rest, value) -> {hdgen key: tensor}` (None for a
    key it does not know, which is an error naming `what`)."""
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        mapped = rename(key[len(prefix):], value)
        if mapped is None:
            raise UsageError(f"{where}: unexpected key {key} in the CLEL {what}")
        out.update(mapped)
    return out


def _normalize(name: str, rest: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    """The official Normalize's [3] mean or std as hdgen's [1, 3, 1, 1] buffer."""
    return {f"{name}.{rest.rsplit('.', 1)[1]}": value.reshape(1, -1, 1, 1)}


def _ebm(state: dict[str, torch.Tensor], prefix: str, where: str) -> dict[str, torch.Tensor]:
    lengths = _stage_lengths(state, prefix)
    starts = [sum(lengths[:i]) for i in range(len(lengths))]

    def rename(rest, value):
        if rest in ("stem.0.mean", "stem.0.std"):
            return _normalize("backbone.normalize", rest, value)
        if rest.startswith("stem.1."):
            return {"backbone.towers.0.stem." + rest[7:]: value, "backbone.first_layer." + rest[7:]: value.clone()}
        if m := re.match(r"^stages\.(\d+)\.(\d+)\.(.+)$", rest):
            return {f"backbone.towers.0.body.{starts[int(m[1])] + int(m[2])}.{m[3]}": value}
        if m := re.match(r"^(head|projection)\.(\d+)\.(\w+)$", rest):
            return {f"{'backbone.mlp' if m[1] == 'head' else 'projector.net'}.{m[2]}.{m[3]}": value}
        return None

    return _remap(state, prefix, rename, "EBM", where)


def _encoder(state: dict[str, torch.Tensor], prefix: str, where: str) -> dict[str, torch.Tensor]:
    def rename(rest, value):
        if rest in ("conv1.0.mean", "conv1.0.std"):
            return _normalize("normalize", rest, value)
        if rest == "conv1.1.weight":
            return {"conv1.weight": value}
        if rest.startswith("bn1."):
            return {rest: value}
        if m := re.match(r"^layer([1-4])\.(\d+)\.(.+)$", rest):
            return {f"layers.{int(m[1]) - 1}.{m[2]}.{m[3].replace('downsample.', 'shortcut.')}": value}
        if m := re.match(r"^fc\.(\d+)\.(\w+)$", rest):
            return {f"mlp.{m[1]}.{m[2]}": value}
        return None

    return _remap(state, prefix, rename, "encoder", where)


def from_official_clel(state: dict[str, torch.Tensor], where: str) -> dict[str, dict[str, torch.Tensor]]:
    """hdgen's sections from an official JointModel state dict: `model`, `objective.ema_model`,
    `objective.encoder`, `objective.ema_encoder` and `buffer` (images only)."""
    groups = ("ebm.", "ema_ebm.", "encoder.", "ema_encoder.", "sampler.")
    unknown = [k for k in state if not k.startswith(groups)]
    if unknown or "ebm.stem.1.bias" not in state or "encoder.conv1.1.weight" not in state:
        raise UsageError(f"{where}: not a CLEL JointModel state dict (unexpected {unknown[:3]} or no ebm/encoder)")
    if "sampler.memory" not in state or set(k for k in state if k.startswith("sampler.")) != {"sampler.memory"}:
        raise UsageError(f"{where}: the CLEL sampler should hold exactly its memory buffer")
    return {"model": _ebm(state, "ebm.", where), "objective.ema_model": _ebm(state, "ema_ebm.", where),
            "objective.encoder": _encoder(state, "encoder.", where),
            "objective.ema_encoder": _encoder(state, "ema_encoder.", where),
            "buffer": {"images": state["sampler.memory"].float().contiguous()}}


def clel_shape(model: dict[str, torch.Tensor], where: str) -> dict:
    """The preset and widths: one ResBlock per stage is clel-small, two clel-base; the stem's output
    channels are `model.channels`, the encoder's first conv `objective.clel.encoder_width`."""
    bodies = sorted({int(k.split(".")[4]) for k in model if k.startswith("backbone.towers.0.body.")})
    blocks = len(bodies)
    preset = {4: "clel-small", 8: "clel-base"}.get(blocks)
    if preset is None:
        raise UsageError(f"{where}: {blocks} residual blocks; hdgen maps CLEL's small (4) and base (8) EBMs")
    return {"preset": preset, "channels": model["backbone.towers.0.stem.bias"].shape[0]}
