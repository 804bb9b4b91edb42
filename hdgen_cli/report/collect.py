"""Everything a report shows about one run, read from its folder: config, training log, evaluation
records and images. Nothing is trained or evaluated again; the only computation is classifying the
replay buffer once, to show one row of buffer images per predicted class (JEM's protocol)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from hdgen_cli.errors import UsageError
from hdgen_cli.loading import load_model
from hdgen_cli.records import read_records
from hdgen_cli.runs import CONFIG, LAST, read_metrics
from hdgen_cli.train.outputs import grid_image

PER_CLASS = 8  # buffer images shown per class row


@dataclass
class RunData:
    name: str
    folder: Path
    config: dict
    steps: list[dict]             # training records (one per log line)
    events: list[dict]            # divergences, roll-backs, buffer FIDs, valid and test accuracy, finishes
    evaluations: dict[str, list[dict]] = field(default_factory=dict)  # command -> records, oldest first
    images: dict[str, bytes] = field(default_factory=dict)            # title -> PNG bytes

    def latest(self, command: str, **match) -> dict | None:
        """The newest record of `command` matching `match`; records of a checkpoint kept on the way
        (iter-NNNNNNN.safetensors, `hdgen bench --at`) count only when the run has no other."""
        found = [r for r in self.evaluations.get(command, []) if all(r.get(k) == v for k, v in match.items())]
        final = [r for r in found if not Path(str(r.get("checkpoint", ""))).name.startswith("iter-")]
        return (final or found)[-1] if found else None

    @property
    def method(self) -> str:
        return self.config.get("name", "?")

    @property
    def dataset(self) -> str:
        return self.config.get("data", {}).get("name", "?")


def png_bytes(image, max_width: int = 640) -> bytes:
    """A PIL image as PNG bytes, no wider than `max_width` (keeps the page small)."""
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def file_png(path: str | Path | None) -> bytes | None:
    if not path or not Path(path).is_file():
        return None
    with Image.open(path) as image:
        return png_bytes(image.convert("RGB") if image.mode not in ("L", "RGB") else image.copy())


def _buffer_images(folder: Path) -> dict[str, bytes]:
    """The buffer as saved (first 64 slots) and, for classifiers, one row per predicted class."""
    loaded = load_model(folder, device="cpu")
    buffer = loaded.checkpoint.tensors.get("buffer.images")
    if buffer is None:
        return {}
    pixel_range = loaded.info.pixel_range
    out = {"replay buffer (64 slots, as saved)": png_bytes(grid_image(buffer[:64], pixel_range))}
    if loaded.model.has_classifier and loaded.info.num_classes <= 20:
        rows: dict[int, list] = {c: [] for c in range(loaded.info.num_classes)}
        with torch.no_grad():
            for start in range(0, len(buffer), 500):
                x = buffer[start:start + 500].float()
                for image, c in zip(x, loaded.model.scores(x).argmax(1).tolist()):
                    if len(rows[c]) < PER_CLASS:
                        rows[c].append(image)
                if all(len(r) == PER_CLASS for r in rows.values()):
                    break
        blank = torch.full_like(buffer[0].float(), -1.0 if pixel_range == "symmetric" else 0.0)
        tiles = [t for c in rows for t in rows[c] + [blank] * (PER_CLASS - len(rows[c]))]
        title = "buffer images by predicted class (one row per class, 0 at the top; blank: too few)"
        out[title] = png_bytes(grid_image(torch.stack(tiles), pixel_range, nrow=PER_CLASS))
    return out


def collect(folder: str | Path) -> RunData:
    """Read one run directory; one UsageError line when it is not one."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file():
        raise UsageError(f"{folder} is not an hdgen run directory (no config.json); pass a folder `hdgen train` wrote")
    log = read_metrics(folder)
    data = RunData(folder.name, folder, json.loads((folder / CONFIG).read_text()),
                   [r for r in log if r.get("kind") == "train"], [r for r in log if r.get("kind") == "event"])
    for record in read_records(folder):
        data.evaluations.setdefault(record.get("command", "?"), []).append(record)
    if (folder / LAST).is_file():
        data.images.update(_buffer_images(folder))
    final = file_png(folder / "samples.png")
    if final:
        data.images["after training (samples.png: buffer chains refined by output.final_sample_steps)"] = final
    for record in reversed(data.evaluations.get("sample", [])):  # the newest recorded draw of each kind
        kind = "unconditional" if record.get("class") is None else f"class {record['class']}"
        title = f"fresh samples, {kind}: {record.get('steps')} steps from {record.get('init')} (hdgen sample)"
        if not any(t.startswith(f"fresh samples, {kind}:") for t in data.images) and (png := file_png(record.get("png"))):
            data.images[title] = png
    return data
