"""The JEM family's Wide-ResNet state dict (JEM, JEM++, SADA-JEM, M-EBM, GMMC) and hdgen's.

The official `CCF` model keeps the WRN under `f.`: `f.conv1`, `f.layer{1,2,3}.{i}.{bn1,conv1,bn2,conv2,
shortcut.0}`, `f.bn1`, then `class_output` (the logits) and `energy_output` (a scalar head that the
class-conditional `CCF` never uses). Variants:
- JEM's WRN also holds an unused `f.linear`;
- JEM++'s YOPO WRN registers the stem twice (`f.layer_one`) and the stages and final norm again under
  `f.other_layers.{0,1,2,3}`, so those tensors appear under two names;
- without BatchNorm (`norm=None`) the `bn` entries are absent.
hdgen's WRN (models/wrn.py) holds the same tensors under `backbone.stem` (and its alias
`backbone.first_layer`), `backbone.stages.{s}.{i}.{norm1,conv1,norm2,conv2,shortcut}`,
`backbone.norm` and `backbone.head`. Both compute the same function (pre-activation blocks,
LeakyReLU 0.2, stride on the second conv), so a key map is all a conversion needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from hdgen_cli.errors import UsageError

_BLOCK = re.compile(r"^f\.layer([123])\.(\d+)\.(bn1|conv1|bn2|conv2|shortcut\.0)\.(\w+)$")
_ALIAS = re.compile(r"^f\.(layer_one|other_layers)\.")
_PART = {"bn1": "norm1", "conv1": "conv1", "bn2": "norm2", "conv2": "conv2", "shortcut.0": "shortcut"}
UNUSED = ("energy_output.", "f.linear.")  # in the official files, read by no CCF energy


@dataclass
class WRNShape:
    depth: int
    width: int
    norm: str  # "batch" or "none"
    channels: int
    num_classes: int | None


@dataclass
class Converted:
    tensors: dict[str, torch.Tensor]
    shape: WRNShape
    dropped: list[str] = field(default_factory=list)


def _official_to_hdgen(key: str) -> str | None:
    if key.startswith("f.conv1."):
        return "backbone.stem." + key[len("f.conv1."):]
    if key.startswith("f.bn1."):
        return "backbone.norm." + key[len("f.bn1."):]
    if key.startswith("class_output."):
        return "backbone.head." + key[len("class_output."):]
    m = _BLOCK.match(key)
    if m:
        stage, block, part, leaf = m.groups()
        return f"backbone.stages.{int(stage) - 1}.{block}.{_PART[part]}.{leaf}"
    return None


def _alias_target(key: str) -> str:
    """The primary name of a YOPO alias: `f.layer_one.X` is `f.conv1.X`, `f.other_layers.{s}.` is
    `f.layer{s+1}.` (s < 3) or `f.bn1.` (s = 3)."""
    if key.startswith("f.layer_one."):
        return "f.conv1." + key[len("f.layer_one."):]
    stage, rest = key[len("f.other_layers."):].split(".", 1)
    return f"f.bn1.{rest}" if stage == "3" else f"f.layer{int(stage) + 1}.{rest}"


def from_official(state: dict[str, torch.Tensor], where: str, classifier: bool = True) -> Converted:
    """hdgen `model.` tensors (without the prefix) from an official JEM-family WRN state dict.
    Unknown keys, missing parts and aliases that disagree with their primary are errors."""
    tensors, dropped, unknown = {}, [], []
    for key, value in state.items():
        if _ALIAS.match(key):
            primary = _alias_target(key)
            if primary not in state or not torch.equal(state[primary], value):
                raise UsageError(f"{where}: {key} should repeat {primary} (the YOPO layout) but does not")
            continue
        if key.startswith(UNUSED):
            dropped.append(key)
            continue
        target = _official_to_hdgen(key)
        if target is None:
            unknown.append(key)
        else:
            tensors[target] = value
    if unknown:
        hint = (" (a 64x64 WRN with a fourth stage)" if any(k.startswith("f.layer4.") for k in unknown) else
                " (HDGE's logit queue: use --from hdge)" if "queue_logit" in unknown else "")
        raise UsageError(f"{where}: unexpected keys {unknown[:4]}{hint}; hdgen maps the 32x32 JEM-family WRN "
                         "only. Is --from right?")
    if "backbone.stem.weight" not in tensors or "backbone.stages.0.0.conv1.weight" not in tensors:
        raise UsageError(f"{where}: no WRN in the state dict (missing f.conv1 or f.layer1); is --from right?")
    if classifier and "backbone.head.weight" not in tensors:
        raise UsageError(f"{where}: missing class_output (the logits); is --from right?")
    tensors["backbone.first_layer.weight"] = tensors["backbone.stem.weight"]
    tensors["backbone.first_layer.bias"] = tensors["backbone.stem.bias"]
    return Converted(tensors, infer_shape(tensors, where), sorted({k.rsplit(".", 1)[0] for k in dropped}))


def infer_shape(tensors: dict[str, torch.Tensor], where: str) -> WRNShape:
    """Depth, width, norm, input channels and classes from the tensors' names and shapes."""
    width16 = tensors["backbone.stages.0.0.conv1.weight"].shape[0]
    if width16 % 16:
        raise UsageError(f"{where}: first stage has {width16} channels, not a multiple of 16; not a JEM WRN")
    blocks = {int(k.split(".")[3]) for k in tensors if k.startswith("backbone.stages.0.")}
    stages = {int(k.split(".")[2]) for k in tensors if k.startswith("backbone.stages.")}
    if stages != {0, 1, 2} or blocks != set(range(len(blocks))):
        raise UsageError(f"{where}: stages {sorted(stages)} with blocks {sorted(blocks)}; a WRN has three stages")
    has_norm = "backbone.norm.running_mean" in tensors
    if not has_norm and any(".norm" in k for k in tensors):
        raise UsageError(f"{where}: a normalisation other than BatchNorm (instance, layer or act norm); "
                         "hdgen's WRN has BatchNorm or none")
    head = tensors.get("backbone.head.weight")
    return WRNShape(depth=6 * len(blocks) + 4, width=width16 // 16, norm="batch" if has_norm else "none",
                    channels=tensors["backbone.stem.weight"].shape[1],
                    num_classes=None if head is None else head.shape[0])


def to_official(tensors: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """An official-layout state dict from hdgen `model.` tensors. `layout`: "jem" (with the unused
    `f.linear`), "yopo" (JEM++: the stem and stages under their second names too) or "plain"
    (SADA-JEM, M-EBM). The unused heads are written as zeros so the official strict loads accept
    the file; no official CCF energy reads them."""
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if key.startswith("backbone.first_layer."):
            continue
        if key.startswith("backbone.stem."):
            out["f.conv1." + key[len("backbone.stem."):]] = value
        elif key.startswith("backbone.norm."):
            out["f.bn1." + key[len("backbone.norm."):]] = value
        elif key.startswith("backbone.head."):
            out["class_output." + key[len("backbone.head."):]] = value
        else:
            m = re.match(r"^backbone\.stages\.(\d)\.(\d+)\.(norm1|conv1|norm2|conv2|shortcut)\.(\w+)$", key)
            if not m:
                raise UsageError(f"model tensor {key} has no place in the official WRN layout")
            stage, block, part, leaf = m.groups()
            official = {v: k for k, v in _PART.items()}[part]
            out[f"f.layer{int(stage) + 1}.{block}.{official}.{leaf}"] = value
    head = out["class_output.weight"]
    out["energy_output.weight"] = torch.zeros(1, head.shape[1], dtype=head.dtype)
    out["energy_output.bias"] = torch.zeros(1, dtype=head.dtype)
    if layout == "jem":
        out["f.linear.weight"] = torch.zeros_like(head)
        out["f.linear.bias"] = torch.zeros(head.shape[0], dtype=head.dtype)
    elif layout == "yopo":
        for key in [k for k in out if k.startswith(("f.conv1.", "f.layer", "f.bn1."))]:
            if key.startswith("f.conv1."):
                out["f.layer_one." + key[len("f.conv1."):]] = out[key]
            elif key.startswith("f.bn1."):
                out["f.other_layers.3." + key[len("f.bn1."):]] = out[key]
            else:
                stage, rest = key[len("f.layer"):].split(".", 1)
                out[f"f.other_layers.{int(stage) - 1}.{rest}"] = out[key]
    return {k: v.detach().clone().contiguous() for k, v in out.items()}
