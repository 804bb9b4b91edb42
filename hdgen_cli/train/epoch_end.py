"""What happens at a check point besides the guard's verdict: which checkpoint files to write,
GMMC's calibration before writing, and at an epoch's end the validation accuracy (best.safetensors),
TensorBoard's images and the live FID."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hdgen_cli import distributed as dist
from hdgen_cli.checkpoint import Captured, save_checkpoint
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.evaluation import classify_metrics
from hdgen_cli.runs import BEST, LAST, epoch_name, kept_name
from hdgen_cli.train.state import TrainingState, per_rank


@dataclass(frozen=True)
class Due:
    """What iteration `it` asks for: a log line, an epoch's end, a periodic last.safetensors, a kept budget."""

    logging: bool
    epoch_end: bool
    periodic: bool
    kept: bool

    @property
    def any(self) -> bool:
        return self.logging or self.epoch_end or self.periodic or self.kept


class CheckPoints:
    """The run's checkpoint and epoch-end work. `run` is a `parts.Run`, `data` a `TrainingData`,
    `recovery` the guard's `Recovery` (its good state follows every checkpoint written)."""

    def __init__(self, cfg: RunConfig, run, data, state: TrainingState, recovery, run_dir: Path,
                 best_valid: float | None = None, tensorboard=None, live_fid=None):
        self.cfg, self.run, self.data, self.state, self.recovery = cfg, run, data, state, recovery
        self.run_dir, self.best_valid = run_dir, best_valid
        self.tensorboard, self.live_fid = tensorboard, live_fid
        self.keep_at = set(cfg.train.keep_iters)

    def due(self, it: int) -> Due:
        tc, total = self.cfg.train, self.data.total_iters
        return Due(it % tc.log_every == 0 or it == total, it % self.data.iters_per_epoch == 0 or it == total,
                   tc.ckpt_every_iters > 0 and it % tc.ckpt_every_iters == 0, it in self.keep_at)

    def write(self, it: int, due: Due, monitor) -> None:
        """The files iteration `it` writes, and the work that comes before them."""
        writes = [LAST] if due.periodic else []  # mid-epoch: the state as it is (no calibration)
        if due.kept:  # a training budget to evaluate: calibrated like an epoch end (gamma-hat is not trained)
            writes.append(kept_name(it))
            if not due.epoch_end:
                self.calibrate(it, monitor)
        if due.epoch_end:
            self.epoch_end(it, writes, monitor)
        if not self.recovery.may_write_last(it, self.data.total_iters):
            writes = [w for w in writes if w != LAST]
        if writes:
            captured = self.state.capture(it)
            self.save(writes, captured)
            self.recovery.keep(captured)
        self.recovery.snapshot_if_due(it)

    def epoch_end(self, it: int, writes: list[str], monitor) -> None:
        """An epoch's end (or the last iteration): adds its files to `writes`, calibrates, logs
        TensorBoard and the live FID, and checks the validation accuracy."""
        tc, cfg, run = self.cfg.train, self.cfg, self.run
        done = math.ceil(it / self.data.iters_per_epoch)
        last_iteration = it == self.data.total_iters
        evaluating = (run.model.has_classifier and self.data.splits.valid is not None
                      and (done % tc.eval_every == 0 or last_iteration))
        if (done % tc.ckpt_every == 0 or last_iteration) and LAST not in writes:
            writes.append(LAST)
        if tc.keep_every and done % tc.keep_every == 0:
            writes.append(epoch_name(done))
        if evaluating or writes:
            self.calibrate(it, monitor, f"epoch {done}")
        buffer_images = run.buffer.images if run.buffer is not None else None
        if self.tensorboard is not None:
            self.tensorboard.epoch(it, run.model, self.data.train_set.images, buffer_images, cfg.data.pixel_range)
        if self.live_fid is not None and done % tc.fid_every == 0:
            fid = self.live_fid(buffer_images, cfg.data.pixel_range)
            monitor.event(f"epoch {done}: buffer FID {fid:.2f}", {"iter": it, "fid": fid})
        if evaluating:
            valid = classify_metrics(run.model, self.data.splits.valid, cfg.data.pixel_range, sigma=cfg.data.eval_sigma)
            if self.best_valid is None or valid["accuracy"] > self.best_valid:
                writes.append(BEST)
                self.best_valid = valid["accuracy"]
            monitor.event(f"epoch {done}: valid accuracy {valid['accuracy']:.4f}",
                          {"iter": it, "valid_accuracy": valid["accuracy"], "valid_nll": valid["nll"]})

    def calibrate(self, it: int, monitor, when: str | None = None) -> None:
        """Before a checkpoint: one set of BatchNorm statistics for all ranks, and the head's
        calibration from the training set (GMMC's gamma-hat; nothing for other heads)."""
        dist.average_buffers(self.run.model)
        calibrated = self.run.model.calibrate(self.data.train_set, self.cfg.data.pixel_range)
        if calibrated:
            monitor.event(f"{when or f'iteration {it}'}: " + "  ".join(f"{k} {v:.4g}" for k, v in calibrated.items()),
                          {"iter": it, **calibrated})

    def save(self, names: list[str], captured: Captured) -> None:
        """Rank 0 writes; under torchrun every rank calls this, sending its own buffer, data
        position and RNG (saved as `rank<r>.`), so a resume on as many processes is exact."""
        main = dist.is_main()
        if dist.world_size() > 1:  # one process has no other ranks' state to fetch
            parts = dist.gather_to_main({k: v.cpu() for k, v in per_rank(captured.tensors).items()})
            if main:
                others = {f"rank{r}.{k}": v for r, part in enumerate(parts) if r for k, v in part.items()}
                captured = Captured(captured.iteration, {**captured.tensors, **others}, captured.optim_meta)
        if main:
            position = {"iteration": captured.iteration, "epoch": captured.iteration / self.data.iters_per_epoch,
                        "best_valid": self.best_valid, **self.recovery.position(), "world_size": dist.world_size()}
            for name in names:
                save_checkpoint(self.run_dir / name, captured, config=self.cfg, info=self.run.info, position=position)
