"""TensorBoard logging (`train.log.tensorboard=true`, the optional `hdgen[tensorboard]` extra).

The monitor mirrors into RUN/tb/ what it writes to metrics.jsonl: every logged scalar under
`train/`, every numeric field of an event (valid accuracy, buffer FID, GMMC's gamma) under
`eval/`, the guard's divergences under `guard/` and every event's message as text. Each epoch end
adds histograms of E(data) and E(samples) on fixed images and a grid of buffer images. The
official JEM, JEM++ and SADA-JEM codes log to TensorBoard; this keeps that workflow.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hdgen_cli.data import from_model_range, to_model_range
from hdgen_cli.errors import UsageError
from hdgen_cli.runs import TENSORBOARD

PROBE = 256  # training images and buffer slots whose energies are histogrammed each epoch


def open_writer(run_dir: Path):
    """A SummaryWriter on RUN/tb/, or one UsageError line when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # deferred: the optional [tensorboard] extra
    except ImportError:
        raise UsageError("train.log.tensorboard=true needs the tensorboard package: "
                         "pip install \"hdgen[tensorboard]\" (or set train.log.tensorboard=false)") from None
    return SummaryWriter(str(Path(run_dir) / TENSORBOARD))


class TensorBoardLog:
    def __init__(self, run_dir: Path):
        self.writer = open_writer(run_dir)

    def step(self, record: dict) -> None:
        it = record["iter"]
        for key, value in record.items():
            if key not in ("iter", "kind") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"train/{key}", value, it)

    def event(self, message: str, record: dict) -> None:
        it = record.get("iter", 0)
        self.writer.add_text("events", message, it)
        if "divergence" in record:
            self.writer.add_scalar("guard/divergence", 1.0, it)
            self.writer.add_scalar("guard/rolled_back_to", record.get("rolled_back_to", it), it)
        for key, value in record.items():
            if key not in ("iter", "kind", "rolled_back_to") and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                self.writer.add_scalar(f"eval/{key}", value, it)

    @torch.no_grad()
    def epoch(self, it: int, model, data_images: torch.Tensor, buffer_images: torch.Tensor | None,
              pixel_range: str) -> None:
        """Energy histograms on the first PROBE training images and buffer slots (eval mode, no RNG
        drawn, so exact resume is unaffected) and a grid of the first 64 buffer images."""

        was_training = model.training
        model.eval()
        try:
            device = next(model.parameters()).device
            x = to_model_range(data_images[:PROBE].to(device), pixel_range)
            self.writer.add_histogram("energy/data", model.energy(x).float().cpu(), it)
            if buffer_images is not None:
                q = buffer_images[:PROBE]
                self.writer.add_histogram("energy/samples", model.energy(q).float().cpu(), it)
                grid = from_model_range(q[:64].float().cpu(), pixel_range).clamp(0, 1)
                self.writer.add_images("samples/buffer", grid, it)
        finally:
            model.train(was_training)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
