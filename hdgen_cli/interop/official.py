"""The official codes hdgen imports from and exports to: which preset each maps to, how its file
is laid out, and the conversion of its tensors into an hdgen inference checkpoint.

Every supported code saves `{"model_state_dict": f.state_dict(), "replay_buffer": buffer, ...}`
with `torch.save`, around the JEM-family Wide-ResNet (wrn_layout.py):
- JEM, JEM++, SADA-JEM, M-EBM: the `CCF` classifier; the buffer is a tensor of images in [-1, 1];
- HDGE: the same, with its logit queue `queue_logit` [C, K] and `queue_ptr` inside the model;
- GMMC: the WRN alone (no linear head), its class centres in the `margin` entry (the pickled LDA
  layer, read field by field, or its state dict), and the buffer as [images, labels].
CLEL saves {"model": JointModel.state_dict(), "optimizers": ..., ...} instead (clel_layout.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from hdgen_cli.errors import UsageError, did_you_mean
from hdgen_cli.interop.clel_layout import clel_shape, from_official_clel
from hdgen_cli.interop.reading import ModuleFields, read_tensors_file, state_dict_of
from hdgen_cli.interop.wrn_layout import from_official


@dataclass(frozen=True)
class OfficialCode:
    name: str
    repository: str
    preset: str
    layout: str  # for export: "jem" (f.linear too), "yopo" (JEM++) or "plain"


CODES = {c.name: c for c in (
    OfficialCode("jem", "wgrathwohl/JEM", "jem", "jem"),
    OfficialCode("jempp", "sndnyang/JEMPP", "jempp-m10", "yopo"),
    OfficialCode("sadajem", "sndnyang/SADAJEM", "sada-jem-k5", "plain"),
    OfficialCode("mebm", "sndnyang/mebm", "jem", "plain"),  # M-EBM's CCF: JEM's energy on the same WRN
    OfficialCode("gmmc", "sndnyang/GMMC", "gmmc-gen", "plain"),
    OfficialCode("hdge", "forhaoliu/hybrid-discriminative-generative", "hdge", "jem"),
    OfficialCode("clel", "hankook/CLEL", "clel-small", "none"),  # clel-base when the EBM has 2 blocks a stage
)}
EXPORTABLE = ("jem", "jempp", "sadajem")


def code_named(name: str, choices=CODES, option: str = "--from") -> OfficialCode:
    if name not in choices:
        close = did_you_mean(name, choices)
        hint = f"did you mean '{close}'? " if close else ""
        raise UsageError(f"unknown {option} '{name}'; {hint}choose one of {', '.join(choices)}")
    return CODES[name]


@dataclass
class Imported:
    """An official checkpoint in hdgen's terms: `model.` tensors (without the prefix), other
    checkpoint tensors (`objective.queue.*`), the replay buffer, the config overrides that rebuild
    its architecture, and the keys read by no hdgen energy."""

    tensors: dict[str, torch.Tensor]
    buffer: torch.Tensor | None
    overrides: list[str]
    image_size: int
    num_classes: int
    channels: int
    dropped: list[str] = field(default_factory=list)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    buffer_labels: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)
    preset: str | None = None  # when the tensors decide it (CLEL small or base)


def _images(buffer, path: Path, channels: int) -> torch.Tensor:
    if not isinstance(buffer, torch.Tensor) or buffer.dim() != 4 or buffer.shape[1] != channels \
            or buffer.shape[2] != buffer.shape[3]:
        shape = tuple(buffer.shape) if isinstance(buffer, torch.Tensor) else type(buffer).__name__
        raise UsageError(f"{path}: replay_buffer is {shape}, not [N, {channels}, H, H] images")
    return buffer.float().contiguous()


def _empty(buffer) -> bool:
    return buffer is None or (isinstance(buffer, (list, tuple)) and len(buffer) == 0)


def _assemble(tensors, shape, buffer, dropped, extra=None, labels=None, notes=()) -> Imported:
    """An `Imported` for a JEM-family WRN, with the overrides that rebuild its architecture."""
    classes = shape.num_classes
    if buffer is not None and labels is None and len(buffer) % classes:  # hdgen blocks its buffer by class
        buffer = buffer[: len(buffer) - len(buffer) % classes]
    image_size = buffer.shape[-1] if buffer is not None else 32
    overrides = ["model.name=wrn", f"model.depth={shape.depth}", f"model.width={shape.width}",
                 f"model.norm={shape.norm}"]
    if classes in (10, 100):  # what the official codes train on; `data.name=svhn` overrides
        overrides.append(f"data.name=cifar{classes}")
    if buffer is not None:
        overrides.append(f"sampler.buffer.size={len(buffer)}")
    return Imported(tensors, buffer, overrides, image_size, classes, shape.channels, dropped, extra or {},
                    labels, list(notes))


def _read_logit_wrn(code: OfficialCode, path: Path) -> Imported:
    obj = read_tensors_file(path)
    state = state_dict_of(obj, path)
    extra, overrides = {}, []
    if code.name == "hdge":
        if "queue_logit" not in state or "queue_ptr" not in state:
            raise UsageError(f"{path}: no queue_logit and queue_ptr; not an HDGE checkpoint (try --from jem)")
        queue = state.pop("queue_logit")  # [C, K] in HYM, [K, C] in hdgen's LogitQueue
        extra = {"objective.queue.logits": queue.T.contiguous(),
                 "objective.queue.ptr": state.pop("queue_ptr").reshape(()).long()}
        overrides = [f"objective.hdge.queue_size={queue.shape[1]}"]
    converted = from_official(state, str(path))
    buffer = None if _empty(obj.get("replay_buffer")) else _images(obj["replay_buffer"], path, converted.shape.channels)
    imported = _assemble(converted.tensors, converted.shape, buffer, converted.dropped, extra)
    imported.overrides += overrides
    return imported


def _read_gmmc(path: Path) -> Imported:
    obj = read_tensors_file(path, modules=("LDALayer.LDALayer",))
    state = state_dict_of(obj, path)
    margin = obj.get("margin")
    centres = (margin.parameters_and_buffers() if isinstance(margin, ModuleFields) else margin or {}).get("centers")
    if not isinstance(centres, torch.Tensor) or centres.dim() != 2:
        raise UsageError(f"{path}: no class centres ('margin' with 'centers'); not a GMMC checkpoint")
    converted = from_official(state, str(path), classifier=False)
    shape = converted.shape
    shape.num_classes = centres.shape[0]
    # gamma 1: the official logits are -||phi - mu||^2 / 2 (hdgen's own training fits gamma-hat at its end)
    tensors = {**converted.tensors, "means": centres.detach().clone().float(), "gamma": torch.ones(())}
    notes = ["gamma = 1, as the official code's logits use; hdgen's training would store gamma-hat"]
    buffer, labels = None, None
    raw = obj.get("replay_buffer")
    if not _empty(raw):
        if not (isinstance(raw, (list, tuple)) and len(raw) == 2):
            raise UsageError(f"{path}: GMMC's replay_buffer should be [images, labels]")
        images, y = _images(raw[0], path, shape.channels), torch.as_tensor(raw[1]).long()
        counts = torch.bincount(y, minlength=shape.num_classes)
        if len(y) == len(images) and bool((counts == counts[0]).all()):
            order = torch.argsort(y, stable=True)  # hdgen's buffer holds class c in block c
            buffer, labels = images[order], y[order]
        else:
            notes.append("buffer not imported: its classes are not equally many, and hdgen's buffer is blocked by class")
    return _assemble(tensors, shape, buffer, converted.dropped, labels=labels, notes=notes)


def _read_clel(path: Path) -> Imported:
    obj = read_tensors_file(path)
    sections = from_official_clel(state_dict_of(obj, path, key="model"), str(path))
    shape = clel_shape(sections["model"], str(path))
    buffer = _images(sections["buffer"]["images"], path, 3)
    extra = {f"{name}.{k}": v for name in ("objective.ema_model", "objective.encoder", "objective.ema_encoder")
             for k, v in sections[name].items()}
    width = sections["objective.encoder"]["conv1.weight"].shape[0]
    overrides = [f"model.channels={shape['channels']}", f"objective.clel.encoder_width={width}",
                 f"sampler.buffer.size={len(buffer)}"]
    notes = ["10 classes assumed (CIFAR-10; CLEL reads no labels): pass data.name=... for another dataset"]
    return Imported(sections["model"], buffer, overrides, buffer.shape[-1], 10, 3, [], extra, notes=notes,
                    preset=shape["preset"])


def read_official(code: OfficialCode, path: str | Path) -> Imported:
    """Read and convert one official checkpoint file (nothing is unpickled but tensors)."""
    path = Path(path).expanduser()
    readers = {"gmmc": _read_gmmc, "clel": _read_clel}
    return readers[code.name](path) if code.name in readers else _read_logit_wrn(code, path)
