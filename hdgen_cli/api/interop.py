"""`hdgen import` and `hdgen export`: the official codes' checkpoints in and out of hdgen runs."""

from __future__ import annotations

from pathlib import Path

import torch

from hdgen_cli.checkpoint import Captured, load_checked, save_checkpoint
from hdgen_cli.errors import CheckpointError, UsageError
from hdgen_cli.files import write_text_atomically
from hdgen_cli.interop.official import CODES, EXPORTABLE, code_named, read_official
from hdgen_cli.interop.reading import write_tensors_file
from hdgen_cli.interop.wrn_layout import to_official
from hdgen_cli.loading import load_model
from hdgen_cli.models.encoder import build_encoder
from hdgen_cli.parts import DataInfo, build_model, load_config
from hdgen_cli.runs import CONFIG, LAST
from hdgen_cli.tensors import section


def import_checkpoint(code: str, path: str | Path, out: str | Path, overrides: list[str] | None = None,
                      force: bool = False, preset: str | None = None) -> dict:
    """Convert an official checkpoint into the run directory `out` (config.json and
    last.safetensors, with the replay buffer when the file has one). The config is `preset` (default:
    the code's) with the architecture read from the tensors, then `overrides`. Returns a summary."""
    official = code_named(code)
    out = Path(out).expanduser()
    if (out / LAST).exists() and not force:
        raise UsageError(f"{out} already holds a run; choose another --out or pass --force")
    imported = read_official(official, path)
    preset = preset or imported.preset or official.preset
    cfg = load_config(preset, imported.overrides + list(overrides or []))
    info = DataInfo(imported.channels, imported.image_size, imported.num_classes, cfg.data.pixel_range)
    model = build_model(cfg, info)
    tensors = {f"model.{k}": v.clone() for k, v in imported.tensors.items()}  # safetensors refuses shared memory
    if imported.buffer is not None:
        if cfg.sampler.buffer.size != len(imported.buffer):
            raise UsageError(f"sampler.buffer.size must stay {len(imported.buffer)}, the saved buffer's size")
        # hdgen's buffer is blocked by class (slots of class c for conditional draws), the official one is not
        tensors["buffer.images"] = imported.buffer
        tensors["buffer.labels"] = (imported.buffer_labels if imported.buffer_labels is not None else
                                    torch.arange(info.num_classes).repeat_interleave(len(imported.buffer) //
                                                                                     info.num_classes))
    tensors.update({k: v.clone() for k, v in imported.extra.items()})
    # The check `load_model` makes: every tensor has its place and shape in the rebuilt networks.
    why = f"is it a {official.name} checkpoint? Overrides must keep the architecture"
    try:
        load_checked(model, imported.tensors, str(path), why)
        for name, network in _companions(imported.extra, cfg, info).items():
            load_checked(network, section(imported.extra, name), f"{path} ({name})", why)
    except CheckpointError as exc:  # the tensors do not fit: a wrong --from, --preset or override
        raise UsageError(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    position = {"iteration": 0, "imported": {"from": official.name, "repository": official.repository,
                                             "file": str(Path(path).expanduser().resolve())}}
    save_checkpoint(out / LAST, Captured(0, tensors), config=cfg, info=info, position=position)
    write_text_atomically(out / CONFIG, cfg.model_dump_json(indent=2))
    return {"run": str(out), "from": official.name, "preset": preset, "notes": imported.notes, "architecture":
            f"WRN-{cfg.model.depth}-{cfg.model.width}, norm {cfg.model.norm}, {imported.num_classes} classes",
            "tensors": len(imported.tensors), "buffer": None if imported.buffer is None else len(imported.buffer),
            "dropped": imported.dropped}


def _companions(extra: dict, cfg, info) -> dict:
    """The networks besides the model that the imported sections must fit (CLEL's EMA twin and encoders)."""

    out = {}
    if any(k.startswith("objective.ema_model.") for k in extra):
        out["objective.ema_model"] = build_model(cfg, info)
    for name in ("objective.encoder", "objective.ema_encoder"):
        if any(k.startswith(name + ".") for k in extra):
            out[name] = build_encoder(info.channels, cfg.objective.clel.encoder_width)
    return out


def export_checkpoint(run: str | Path, code: str, path: str | Path, force: bool = False) -> dict:
    """Write a run's model (and replay buffer) as the official code's checkpoint file: a dict of
    tensors, `{"model_state_dict": ..., "replay_buffer": ...}`, that its `torch.load` accepts."""
    official = code_named(code, {k: CODES[k] for k in EXPORTABLE}, "--to")
    path = Path(path).expanduser()
    if path.exists() and not force:
        raise UsageError(f"{path} exists; choose another file or pass --force")
    loaded = load_model(run, device="cpu", ema=False)
    cfg = loaded.config
    if cfg.model.name != "wrn" or cfg.energy.name != "logits":
        raise UsageError(f"--to {code} takes a WRN logit model (JEM family); this run is {cfg.model.name} with "
                         f"{cfg.energy.name} energy")
    state = {k: v for k, v in loaded.model.state_dict().items()}
    try:
        model_state = to_official(state, official.layout)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    buffer = loaded.checkpoint.tensors.get("buffer.images")
    obj = {"model_state_dict": model_state, "replay_buffer": buffer.clone() if buffer is not None else []}
    write_tensors_file(obj, path)
    return {"file": str(path), "to": official.name, "tensors": len(model_state),
            "buffer": None if buffer is None else len(buffer)}
