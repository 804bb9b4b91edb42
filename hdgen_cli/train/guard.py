"""Divergence guard: watch every step (`DivergenceGuard`), decide at check points, roll back,
remedy, give up (`Recovery`, the policy the trainer calls).

Every step is watched on the device with no host sync: a non-finite or too large loss, |E(data)|
or |E(samples)| above `energy_limit`, or |E(samples) - E(data)| above `gap_limit` raise a flag.
At check points (every log line, every epoch end, the last step) the trainer reads the flag
once. A raised flag means: roll back to the last good state kept in memory (none is kept while
the early sign is raised, so it predates the rise), apply the remedies, reseed, and go on. After `recoveries` roll-backs,
or with `on_divergence=stop`, it writes a `diverged.safetensors` snapshot (the last samples and
the loss history) and exits with code 3. The official codes crash, assert or silently return here.

The remedies (`train.guard.remedies`; docs/stability.md gives each one's source and what it does
on the divergence suite) only act after a detected divergence, so a run that never diverges is
bit for bit the same with the guard on; their state (`Remedies`) is saved in every checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from hdgen_cli import distributed as dist
from hdgen_cli.config.schema import GuardConfig, RunConfig
from hdgen_cli.errors import HdgenError, UsageError
from hdgen_cli.files import write_atomically
from hdgen_cli.runs import DIVERGED, LAST
from hdgen_cli.train.early_sign import EarlySign
from hdgen_cli.checkpoint import Captured
from hdgen_cli.train.state import TrainingState

# What the watch keeps per window, in this order: the flag, then the worst magnitudes seen.
_WATCHED = ("flag", "loss", "e_data", "e_samples", "gap")


class TrainingDiverged(HdgenError):
    exit_code = 3


@dataclass
class Remedies:
    """How far the run has been remedied; saved in checkpoints so a resume keeps it."""

    recoveries: int = 0
    lr_scale: float = 1.0
    steps_scale: float = 1.0
    momentum_scale: float = 1.0  # lower_momentum: SGD momentum / Adam beta1 times this
    l2_weight: float = 0.0       # energy_l2: the energy-magnitude penalty's extra weight
    clip_norm: float = 0.0       # clip_grad: the gradient-norm clip (0: none)
    applied: list[str] = field(default_factory=list)  # every remedy applied, in order, for reports

    @classmethod
    def from_dict(cls, d: dict | None) -> "Remedies":
        return cls(**(d or {}))

    def to_dict(self) -> dict:
        return asdict(self)

    def next(self, gc: GuardConfig, energy_penalty: bool = True) -> "Remedies":
        """The remedies after one more roll-back: every listed remedy applied once more
        (`energy_penalty` False: the objective has no term for energy_l2, so it is not recorded)."""
        on = set(gc.remedies)
        listed = [r for r in gc.remedies if energy_penalty or r != "energy_l2"]
        return Remedies(
            self.recoveries + 1,
            self.lr_scale * (gc.lr_factor if "lower_lr" in on else 1.0),
            self.steps_scale * (gc.steps_factor if "more_steps" in on else 1.0),
            self.momentum_scale * (gc.momentum_factor if "lower_momentum" in on else 1.0),
            gc.l2_weight if "energy_l2" in on else self.l2_weight,
            gc.clip_norm if "clip_grad" in on else self.clip_norm,
            self.applied + [r for r in listed if r not in self.applied])


def scaled_steps(steps: int, scale: float) -> int:
    return max(1, math.ceil(steps * scale - 1e-9))


def set_momentum(optimizer, base: list[float], scale: float) -> None:
    """SGD's momentum or Adam's beta1 of every parameter group as `base` (the groups' own, read
    once at the start) times `scale` (the lower_momentum remedy)."""
    for group, m in zip(optimizer.param_groups, base):
        if "betas" in group:
            group["betas"] = (m * scale, group["betas"][1])
        elif "momentum" in group:
            group["momentum"] = m * scale


def base_momentum(optimizer) -> list[float]:
    return [g["betas"][0] if "betas" in g else g.get("momentum", 0.0) for g in optimizer.param_groups]


def describe(gc: GuardConfig, remedies: Remedies, steps_before: int | None, steps_now: int | None,
             energy_penalty: bool = True) -> str:
    """What a roll-back changed, for its event line (`energy_penalty`: whether the objective has
    the term energy_l2 weights)."""
    on, parts = set(gc.remedies), []
    if "more_steps" in on and steps_now is not None:
        parts.append(f"sampler steps {steps_before} -> {steps_now}")
    if "lower_lr" in on:
        parts.append(f"lr x{remedies.lr_scale:g}")
    if "lower_momentum" in on:
        parts.append(f"momentum x{remedies.momentum_scale:g}")
    if "energy_l2" in on:
        parts.append(f"energy L2 {remedies.l2_weight:g}" if energy_penalty
                     else "energy L2: none in this objective, not applied")
    if "clip_grad" in on:
        parts.append(f"gradient norm clipped at {remedies.clip_norm:g}")
    if "reset_buffer" in on and steps_now is not None:  # a run with a sampler has a buffer
        parts.append("buffer reset")
    return (", " + ", ".join(parts)) if parts else ", same settings, fresh noise"


def guard_status(gc: GuardConfig, remedies: Remedies, steps: int | None) -> str:
    """The live view's title."""
    if not remedies.recoveries:
        return "guard: ok"
    return f"guard: {remedies.recoveries}/{gc.recoveries} recoveries ({', '.join(remedies.applied) or 'fresh noise'})" \
        + (f", sampler steps {steps}" if steps is not None else "")


def give_up(problem: str, gc: GuardConfig, remedies: Remedies, good_iter: int, snap: Path, last: Path,
            monitor, iteration: int | None = None) -> None:
    """Log and raise the one-line error that ends a run the guard could not save (exit 3)."""
    if gc.on_divergence == "stop":
        tried = "recovery is off (train.guard.on_divergence=stop)"
    elif remedies.recoveries == 0:
        tried = "recovery is off (train.guard.recoveries=0)"
    else:
        tried = (f"{remedies.recoveries} roll-back(s) to iteration {good_iter} did not hold "
                 f"(train.guard.recoveries={gc.recoveries})")
    start = f"resume from {last}" if last.exists() else "start again"
    message = (f"training diverged at {problem}; {tried}. Last samples and loss history in {snap}. To continue, "
               f"{start} with other train.guard.remedies (docs/stability.md), a lower optim.lr or more "
               "train.guard.recoveries")
    monitor.write({"kind": "event", "message": message, "gave_up": True, "iter": iteration})  # the CLI prints it
    raise TrainingDiverged(message)


class DivergenceGuard:
    def __init__(self, cfg: GuardConfig):
        self.cfg = cfg
        self.history: list[float] = []  # loss values read at log points (for the snapshot)
        self.last_samples: torch.Tensor | None = None
        self._window: torch.Tensor | None = None  # (5,) on the device: flag, worst magnitudes
        self._first_bad: torch.Tensor | None = None
        self._limits: torch.Tensor | None = None

    def observe(self, out, iteration: int) -> None:
        """Fold one step's loss and energies into the window, on the device (no host sync)."""
        if out.samples is not None:
            self.last_samples = out.samples
        loss = out.loss.detach().float()
        zero = torch.zeros((), device=loss.device)
        e_d, e_s = out.stats.get("e_data"), out.stats.get("e_samples")
        e_d = zero if e_d is None else e_d.detach().float()
        e_s = zero if e_s is None else e_s.detach().float()
        mags = torch.stack([loss.abs(), e_d.abs(), e_s.abs(), (e_s - e_d).abs()])
        if self._limits is None or self._limits.device != loss.device:  # made once: a copy to the GPU would sync
            self._limits = torch.tensor([self.cfg.loss_limit, self.cfg.energy_limit, self.cfg.energy_limit,
                                         self.cfg.gap_limit], device=loss.device)
        bad = (~torch.isfinite(mags) | (mags > self._limits)).any()
        mags = torch.nan_to_num(mags, nan=math.inf)  # so a NaN survives max() and reads as inf
        now = torch.cat([bad.float().unsqueeze(0), mags])
        if self._window is None:
            self._window = now
            self._first_bad = torch.where(bad, iteration, -1)
        else:
            self._first_bad = torch.where(bad & (self._first_bad < 0), iteration, self._first_bad)
            self._window = torch.maximum(self._window, now)

    def verdict(self) -> str | None:
        """Read the window (one host sync; one all-reduce under torchrun so every rank agrees) and
        clear it. None when every step since the last verdict was fine, else what went wrong."""
        if self._window is None:
            return None
        window = torch.cat([self._window, torch.where(self._first_bad < 0, math.inf, self._first_bad).float()
                            .unsqueeze(0)])
        window[-1] = -window[-1]  # max over ranks of -first = the earliest bad iteration
        window = dist.max_tensor(window).tolist()
        self._window = self._first_bad = None
        if window[0] <= 0:
            return None
        worst = dict(zip(_WATCHED, window))
        limits = {"loss": self.cfg.loss_limit, "e_data": self.cfg.energy_limit, "e_samples": self.cfg.energy_limit,
                  "gap": self.cfg.gap_limit}
        names = {"loss": "|loss|", "e_data": "|E(data)|", "e_samples": "|E(samples)|", "gap": "|E gap|"}
        over = [f"{names[k]} {_fmt(worst[k])} > {limits[k]:.0e}" for k in limits if not worst[k] <= limits[k]]
        return f"iteration {int(-window[-1])}: " + ", ".join(over)

    def record_loss(self, value: float) -> None:
        self.history.append(value)

    def snapshot(self, run_dir: Path, write: bool) -> Path:
        """`diverged.safetensors`: the last samples and the loss history, for a post-mortem."""
        path = run_dir / DIVERGED
        if write:  # only rank 0 writes
            samples = self.last_samples if self.last_samples is not None else torch.zeros(0)
            tensors = {"samples": samples.detach().float().cpu().contiguous(),
                       "loss_history": torch.tensor(self.history, dtype=torch.float64)}
            write_atomically(path, lambda tmp: save_file(tensors, str(tmp)))
        return path


class Recovery:
    """The guard's policy over one run: the last good state (what a divergence rolls back to), the
    remedies applied so far and the early sign; `roll_back` restores, remedies and reseeds, or
    gives up when the recoveries are spent. `run` is a `parts.Run`; `seed` is this rank's."""

    def __init__(self, cfg: RunConfig, run, state: TrainingState, run_dir: Path, seed: int):
        self.cfg, self.gc, self.run, self.state = cfg, cfg.train.guard, run, state
        self.run_dir, self.seed = run_dir, seed
        self.momentum = base_momentum(run.optimizer)  # the config's own: read before a resume loads scaled groups
        self.remedies = Remedies()
        self.early = EarlySign(self.gc.early_rise)
        self.detector = DivergenceGuard(self.gc)
        self.good: Captured | None = None

    def resumed(self, position: dict) -> None:
        """Continue where a checkpoint's guard stood (its remedies and early-sign history)."""
        self.remedies = Remedies.from_dict(position.get("guard"))
        self.early = EarlySign.from_dict(self.gc.early_rise, position.get("early_sign"))

    def position(self) -> dict:
        """The guard's part of a checkpoint's position."""
        return {"guard": self.remedies.to_dict(), "early_sign": self.early.to_dict()}

    def apply(self) -> None:
        """Put the current remedies into the sampler, objective and optimizer."""
        run, r = self.run, self.remedies
        if run.sampler is not None:
            run.sampler.steps = scaled_steps(self.cfg.sampler.steps, r.steps_scale)
        run.objective.lr_scale, run.objective.guard_l2 = r.lr_scale, r.l2_weight
        if r.momentum_scale != 1.0:  # untouched otherwise, so a run never remedied is bit for bit the same
            set_momentum(run.optimizer, self.momentum, r.momentum_scale)

    def status(self) -> str:
        return guard_status(self.gc, self.remedies, self._steps())

    def _steps(self) -> int | None:
        return self.run.sampler.steps if self.run.sampler is not None else None

    def logged(self, iteration: int, record: dict, monitor) -> None:
        """Fold a log line into the loss history and the early sign (an event when it rises)."""
        self.detector.record_loss(record["loss"])
        rise = self.early.update(iteration, record.get("gap"))
        if rise is not None:
            monitor.event(f"early sign at iteration {iteration}: E gap {record['gap']:.3g}, {rise:.3g} above its "
                          f"recent median; no new good state until it settles (the last: iteration "
                          f"{self.good.iteration})", {"iter": iteration, "early_sign": rise})

    def may_write_last(self, iteration: int, total: int) -> bool:
        """Whether last.safetensors may be rewritten now: not while the early sign is up (before the
        run's end), so it stays a good state and a resume rolls back where the uninterrupted run does."""
        return not self.early.raised or iteration >= total

    def keep(self, captured: Captured) -> None:
        """A checkpoint just written is a good state too, unless the early sign is up."""
        if not self.early.raised:
            self.good = captured

    def snapshot_if_due(self, iteration: int) -> None:
        """A fresh in-memory good state every `snapshot_every` iterations (none while the sign is up)."""
        if iteration - self.good.iteration >= self.gc.snapshot_every and not self.early.raised:
            self.good = self.state.capture(iteration)

    def roll_back(self, problem: str, iteration: int, monitor, write: bool) -> int:
        """Answer a divergence found at `iteration`: roll back to the last good state with the
        remedies applied once more, and return the iteration to go on from; or give up (raises
        TrainingDiverged, exit 3) when recovery is off or spent. `write`: this rank writes files."""
        gc, run = self.gc, self.run
        if gc.on_divergence == "stop" or self.remedies.recoveries >= gc.recoveries:
            give_up(problem, gc, self.remedies, self.good.iteration, self.detector.snapshot(self.run_dir, write),
                    self.run_dir / LAST, monitor, iteration)
        self.remedies = self.remedies.next(gc, run.objective.energy_penalty)
        before = self._steps()
        self.state.restore(self.good, "the last good state")
        self.early.roll_back(self.good.iteration)
        torch.manual_seed(self.seed + 7919 * self.remedies.recoveries)  # fresh noise after the roll-back
        if "reset_buffer" in gc.remedies and run.buffer is not None:
            run.buffer.reset()
        self.apply()
        what = describe(gc, self.remedies, before, self._steps(), run.objective.energy_penalty)
        monitor.event(f"divergence at {problem}; rolled back to iteration {self.good.iteration}{what} "
                      f"(recovery {self.remedies.recoveries} of {gc.recoveries})",
                      {"iter": iteration, "divergence": problem, "rolled_back_to": self.good.iteration,
                       **self.remedies.to_dict()})
        monitor.status = self.status()
        return self.good.iteration


def _fmt(value: float) -> str:
    return "non-finite" if math.isinf(value) else f"{value:.3g}"


def check_gap_limit(cfg) -> None:
    """Refuse, before training, a gap_limit the energy_l2 remedy would make a false alarm.

    p (E_d - E_s) + w (E_d^2 + E_s^2) is least at E_s - E_d = p / w: a run rescued with energy_l2
    may sit on that gap for good (measured: 8.5-9.9 at w = 0.1), so a limit near it calls a stable
    run diverged. Twice the plateau leaves room for its noise and still catches a runaway. Checked
    when a run starts, not when a config is read, so checkpoints written with a lower limit load.
    """
    guard, obj = cfg.train.guard, cfg.objective
    if (obj.name != "jem" or guard.on_divergence != "recover" or "energy_l2" not in guard.remedies
            or obj.px_weight == 0):
        return
    plateau = obj.px_weight / (obj.l2_weight + guard.l2_weight)
    if guard.gap_limit < 2 * plateau:
        raise UsageError(f"train.guard.gap_limit {guard.gap_limit:g} is below twice the E gap a run rescued with the "
                         f"energy_l2 remedy settles at ({plateau:g} = px_weight / L2 weight), so a stable run would "
                         f"be called diverged; set train.guard.gap_limit to at least {2 * plateau:g} or raise "
                         "train.guard.l2_weight")
