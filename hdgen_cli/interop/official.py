"""The official codes hdgen imports from and exports to: which preset each maps to, how its file
is laid out, and the conversion of its tensors into an hdgen inference checkpoint.

Every supported code saves `{"model_state_dict": f.state_dict(), "replay_buffer": buffer}` with
`torch.save`; the model is the JEM-family `CCF` Wide-ResNet (wrn_layout.py) and the buffer a
tensor of images in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from hdgen_cli.errors import CheckpointError, UsageError, did_you_mean
from hdgen_cli.interop.reading import read_tensors_file, state_dict_of
from hdgen_cli.interop.wrn_layout import from_official


@dataclass(frozen=True)
class OfficialCode:
    name: str
    repository: str
    preset: str
    layout: str  # for export: "jem" (f.linear too), "yopo" (JEM++) or "plain"
    note: str = ""


CODES = {c.name: c for c in (
    OfficialCode("jem", "wgrathwohl/JEM", "jem", "jem"),
    OfficialCode("jempp", "sndnyang/JEMPP", "jempp-m10", "yopo"),
    OfficialCode("sadajem", "sndnyang/SADAJEM", "sada-jem-k5", "plain"),
    OfficialCode("mebm", "sndnyang/mebm", "jem", "plain",
                 "M-EBM's CCF is JEM's energy on the same WRN; hdgen samples it with JEM's SGLD"),
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
    """An official checkpoint in hdgen's terms: `model.` tensors, the replay buffer (or None), the
    config overrides that rebuild its architecture, and the keys read by no hdgen energy."""

    tensors: dict[str, torch.Tensor]
    buffer: torch.Tensor | None
    overrides: list[str]
    image_size: int
    num_classes: int
    channels: int
    dropped: list[str] = field(default_factory=list)


def _buffer(obj: dict, path: Path, channels: int) -> torch.Tensor | None:
    buffer = obj.get("replay_buffer")
    if buffer is None or (isinstance(buffer, (list, tuple)) and len(buffer) == 0):
        return None
    if not isinstance(buffer, torch.Tensor) or buffer.dim() != 4 or buffer.shape[1] != channels \
            or buffer.shape[2] != buffer.shape[3]:
        shape = tuple(buffer.shape) if isinstance(buffer, torch.Tensor) else type(buffer).__name__
        raise CheckpointError(f"{path}: replay_buffer is {shape}, not [N, {channels}, H, H] images")
    return buffer.float().contiguous()


def read_official(code: OfficialCode, path: str | Path) -> Imported:
    """Read and convert one official checkpoint file (nothing is unpickled but tensors)."""
    path = Path(path).expanduser()
    obj = read_tensors_file(path)
    converted = from_official(state_dict_of(obj, path), str(path))
    shape = converted.shape
    buffer = _buffer(obj, path, shape.channels)
    image_size = buffer.shape[-1] if buffer is not None else 32
    if buffer is not None and len(buffer) % shape.num_classes:  # hdgen blocks its buffer by class
        buffer = buffer[: len(buffer) - len(buffer) % shape.num_classes]
    data = {10: "cifar10", 100: "cifar100"}.get(shape.num_classes)
    overrides = ["model.name=wrn", f"model.depth={shape.depth}", f"model.width={shape.width}",
                 f"model.norm={shape.norm}"]
    if data:
        overrides.append(f"data.name={data}")
    if buffer is not None:
        overrides.append(f"sampler.buffer.size={len(buffer)}")
    return Imported(converted.tensors, buffer, overrides, image_size, shape.num_classes, shape.channels,
                    converted.dropped)
