"""The one training function every method runs (DINO style: labelled setup sections, a short loop,
JSON-lines log). Which paper it trains is decided entirely by the parts the config names
(`parts.build_run`); the setup is in train/setup.py, resuming in train/resume.py, the work at
check points in train/epoch_end.py and the divergence policy in train/guard.py.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from hdgen_cli import distributed as dist
from hdgen_cli.checkpoint import Checkpoint
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.data import DataInfo
from hdgen_cli.evaluation import classify_metrics
from hdgen_cli.models.fastpath import autocast, use_channels_last
from hdgen_cli.models.norm import frozen_running_stats
from hdgen_cli.optim import SAM, lr_at
from hdgen_cli.parts import build_run, check_names, resolve_device
from hdgen_cli.runs import BEST, LAST, METRICS, SAMPLES, open_run_dir
from hdgen_cli.sampling import generate
from hdgen_cli.train.epoch_end import CheckPoints
from hdgen_cli.train.guard import Recovery, check_gap_limit
from hdgen_cli.train.monitor import Monitor
from hdgen_cli.train.outputs import write_grid
from hdgen_cli.train.resume import resume_into
from hdgen_cli.train.setup import setup_data, side_outputs
from hdgen_cli.train.state import TrainingState


@dataclass
class TrainResult:
    run_dir: str
    checkpoint: str
    best_checkpoint: str | None
    iterations: int
    epochs: float
    test_accuracy: float | None  # None for unsupervised models
    test_nll: float | None
    valid_accuracy: float | None
    samples_png: str | None
    seconds: float
    recoveries: int = 0  # divergences the guard rolled back from
    remedies: list[str] = field(default_factory=list)  # the guard's remedies this result was obtained with

    def to_dict(self) -> dict:
        return asdict(self)


def _scalar(t) -> float:
    return float(t.detach()) if torch.is_tensor(t) else float(t)


def train(config: RunConfig, run_dir: str | Path, resume: str | Path | Checkpoint | None = None,
          quiet: bool = False) -> TrainResult:
    """Train the run `config` names into `run_dir` (or continue the checkpoint `resume`: a file, a run
    folder or a loaded Checkpoint)."""
    t_start = time.perf_counter()
    cfg, tc, run_dir = config, config.train, Path(run_dir)
    check_names(cfg)  # before any file is written
    check_gap_limit(cfg)
    device = resolve_device(tc.device)  # joins the process group under torchrun
    main, rank = dist.is_main(), dist.rank()
    leftovers = open_run_dir(run_dir, cfg.model_dump_json(indent=2)) if main else []

    # ------------------------------------------------------------------ 1. data
    data = setup_data(cfg, device)

    # ------------------------------------------------------------------ 2. model, sampler, objective, optimizer
    run = build_run(cfg, device, data.train_set, channels_last=use_channels_last(tc.channels_last, device),
                    compile=tc.compile, cache_dir=run_dir if main else None)
    state = TrainingState(run.model, run.optimizer, run.buffer, run.objective, data.streams)  # what resume and
    recovery = Recovery(cfg, run, state, run_dir, tc.seed + rank)                           # roll-back restore
    tensorboard, live_fid = side_outputs(cfg, run, data.train_set, run_dir, device)

    # ------------------------------------------------------------------ 3. resume
    start = resume_into(resume, state, tc.seed) if resume is not None else None
    if start is not None:
        recovery.resumed(start.position)
    points = CheckPoints(cfg, run, data, state, recovery, run_dir, start.position.get("best_valid") if start else None,
                         tensorboard, live_fid)
    recovery.apply()
    # Under torchrun the objective's network calls go through DDP (gradients averaged on backward);
    # samplers keep using the plain model.
    train_model = dist.replicate(run.model, device)
    run.objective.replicate(lambda module: dist.replicate_module(module, device))

    # ------------------------------------------------------------------ 4. loop
    it = start.iteration if start else 0
    recovery.good = state.capture(it)  # the last good state: what a divergence rolls back to
    with Monitor(run_dir / METRICS if main else None, quiet=quiet or not main, total_iters=data.total_iters,
                 tensorboard=tensorboard) as monitor:
        _announce(monitor, cfg, data, device, run_dir, leftovers, start, recovery)
        run.model.train()
        while it < data.total_iters:
            it += 1
            lr = _set_lr(run, cfg, it, data, recovery.remedies.lr_scale)
            x_lab, y_lab, x_data = data.next_batches()
            out = train_step(train_model, run.objective, run.optimizer, x_lab, y_lab, x_data,
                             amp=lambda: autocast(tc.precision, device), clip=recovery.remedies.clip_norm)
            recovery.detector.observe(out, it)  # on the device: no sync here
            due = points.due(it)
            if not due.any:
                continue
            problem = recovery.detector.verdict()  # one host sync per check point
            if problem is not None:
                it = recovery.roll_back(problem, it, monitor, main)
                continue
            if due.logging:
                _log_step(monitor, recovery, out, it, lr, data.iters_per_epoch)
            points.write(it, due, monitor)

        # -------------------------------------------------------------- 5. finish
        return _finish(cfg, run, data, points, recovery, start, monitor, run_dir, t_start)


def _set_lr(run, cfg: RunConfig, it: int, data, lr_scale: float) -> float:
    """This iteration's learning rate into every parameter group, and the objective's schedule position."""
    lr = lr_at(cfg.optim, it, (it - 1) // data.iters_per_epoch, data.total_iters) * lr_scale
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    run.objective.epoch, run.objective.iteration = (it - 1) / data.iters_per_epoch, it
    run.objective.total_iters = data.total_iters
    return lr


def _announce(monitor, cfg: RunConfig, data, device, run_dir: Path, leftovers: list[Path], start, recovery) -> None:
    """The run's first log lines: what is trained where, and what a restart cleaned up or resumed."""
    monitor.status = recovery.status()
    if leftovers:
        monitor.event(f"removed {len(leftovers)} unfinished write(s) of a killed run: "
                      + ", ".join(p.name for p in leftovers))
    monitor.event(f"training {cfg.name} on {cfg.data.name} ({len(data.train_set)} images, {data.iters_per_epoch} "
                  f"it/epoch, {data.total_iters} iterations) on {device}; run dir {run_dir}")
    if start is not None:
        monitor.event(f"resumed from {start.path} at iteration {start.iteration}{start.note}", {"iter": start.iteration})


def _log_step(monitor, recovery, out, it: int, lr: float, iters_per_epoch: int) -> None:
    """One JSON line: the step's loss, terms and statistics (averaged over ranks)."""
    values = {k: _scalar(v) for k, v in {"loss": out.loss, **out.terms, **out.stats}.items()}
    record = {"iter": it, "epoch": round(it / iters_per_epoch, 3), "lr": lr}
    record.update(dist.mean_across_ranks(values))
    monitor.step(record)  # adds the E gap
    recovery.logged(it, record, monitor)


def _finish(cfg: RunConfig, run, data, points, recovery, start, monitor, run_dir: Path, t_start: float) -> TrainResult:
    """After the loop: the test accuracy, the final sample grid and the result."""
    total = data.total_iters
    if start is not None and start.iteration >= total:  # the loop's last iteration wrote it, unless
        points.save([LAST], points.state.capture(total))  # a resume had nothing left to do
    test = {"accuracy": None, "nll": None}
    if run.model.has_classifier:  # unsupervised heads (CLEL) get no accuracy
        test = classify_metrics(run.model, data.splits.test, cfg.data.pixel_range, sigma=cfg.data.eval_sigma)
        monitor.event(f"test accuracy {test['accuracy']:.4f}  nll {test['nll']:.4f}",
                      {"test_accuracy": test["accuracy"], "test_nll": test["nll"]})
    samples_png = None
    if run.buffer is not None and dist.is_main():
        samples_png = str(write_final_samples(run.model, run.sampler, run.buffer, cfg, run.info, run_dir))
    seconds = round(time.perf_counter() - t_start, 2)  # this session's share, for `hdgen report`
    monitor.event(f"finished: {total} iterations, {seconds:.0f} s", {"iter": total, "seconds": seconds})
    best = run_dir / BEST
    return TrainResult(str(run_dir), str(run_dir / LAST), str(best) if best.exists() else None, total,
                       round(total / data.iters_per_epoch, 3), test["accuracy"], test["nll"], points.best_valid,
                       samples_png, seconds, recovery.remedies.recoveries, list(recovery.remedies.applied))


def train_step(model, objective, optimizer, x_lab, y_lab, x_data, amp=contextlib.nullcontext, clip: float = 0.0):
    """One optimisation step: objective, backward, base step or SAM's two steps; returns the
    step's output. `amp()` wraps the forward passes only (bf16 autocast); backward runs outside it.
    `clip` > 0 clips the gradient norm before each step (the guard's clip_grad remedy).

    SAM's second pass runs at θ + e on the same batches and the same samples (no resampling)
    with BatchNorm running statistics frozen ([SADA] Algorithm 1).
    """
    with amp():
        out = objective(model, x_lab, y_lab, x_data)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if isinstance(optimizer, SAM):
        optimizer.first_step(zero_grad=True)
        with frozen_running_stats(model), amp():
            second = objective(model, x_lab, y_lab, x_data, chains=out.chains)
        second.loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.second_step()
    else:
        optimizer.step()
    objective.after_step()
    return out


def write_final_samples(model, sampler, buffer, cfg: RunConfig, info: DataInfo, run_dir: Path) -> Path:
    """The sample grid after training: buffer chains refined by `output.final_sample_steps` more steps
    (no buffer write), or random buffer slots as they are when that is 0."""
    n = cfg.output.grid_size
    if cfg.output.final_sample_steps > 0:
        images, _ = generate(model, sampler, n, cfg.output.final_sample_steps, buffer.init, buffer=buffer)
    else:
        images = buffer.images[torch.randperm(buffer.size, device=buffer.images.device)[:n]].cpu()
    return write_grid(images, info.pixel_range, run_dir / SAMPLES)
