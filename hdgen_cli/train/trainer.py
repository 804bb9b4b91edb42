"""The one training function every method runs (DINO style: labelled sections, JSON-lines log,
finite-loss guard). Which paper it trains is decided entirely by the parts the config names.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from hdgen_cli import distributed as dist
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.data import BatchStream, BatchTransform, make_splits
from hdgen_cli.evaluation import classify_metrics
from hdgen_cli.files import unfinished_writes, write_text_atomically
from hdgen_cli.models.norm import frozen_running_stats
from hdgen_cli.objectives import build_objective
from hdgen_cli.objectives.base import section
from hdgen_cli.optim import SAM, build_optimizer, lr_at
from hdgen_cli.parts import DataInfo, build_buffer, build_model, build_sampler, resolve_device
from hdgen_cli.train.checkpoint import BEST, LAST, kept_name, load_checkpoint, load_model_state, save_checkpoint
from hdgen_cli.train.fastpath import autocast, prepare_model, use_channels_last
from hdgen_cli.train.guard import (DivergenceGuard, EarlySign, Remedies, base_momentum, check_gap_limit, describe,
                                   give_up, guard_status, scaled_steps, set_momentum)
from hdgen_cli.train.monitor import Monitor
from hdgen_cli.train.outputs import write_grid
from hdgen_cli.train.state import Captured, TrainingState, per_rank


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


def train(config: RunConfig, run_dir: str | Path, resume: str | Path | None = None, quiet: bool = False) -> TrainResult:
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    cfg, tc, gc = config, config.train, config.train.guard
    check_gap_limit(cfg)  # before any file is written
    device = resolve_device(tc.device)  # joins the process group under torchrun
    main, rank = dist.is_main(), dist.rank()
    leftovers = []
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        leftovers = unfinished_writes(run_dir)  # a run killed mid-write leaves its temporary file
        for path in leftovers:
            path.unlink(missing_ok=True)
        write_text_atomically(run_dir / "config.json", config.model_dump_json(indent=2))

    # ------------------------------------------------------------------ 1. data
    # Under torchrun every rank draws its own augmentations, chains and buffer (seed + rank); DDP
    # broadcasts rank 0's initial weights. Each rank streams its own equal shard of the images.
    torch.manual_seed(tc.seed + rank)
    splits = make_splits(cfg.data)
    train_set = splits.train.to(device)
    info = DataInfo(train_set.channels, train_set.image_size, train_set.num_classes, cfg.data.pixel_range)
    shard = train_set.subset(dist.shard_indices(len(train_set), drop_last=True)) if dist.world_size() > 1 else train_set

    def stream(sc, seed_offset):
        transform = BatchTransform.from_config(sc, cfg.data, train_set.default_flip)
        return BatchStream(shard, sc.batch_size, transform, seed=tc.seed + seed_offset + 1000 * rank)

    streams = {"ce": stream(cfg.data.ce, 0)} if cfg.uses_ce_stream else {}
    if cfg.uses_px_stream:
        streams["px"] = stream(cfg.data.px, 1)
    epoch_stream = streams.get(cfg.data.epoch_by) or next(iter(streams.values()))
    iters_per_epoch = len(epoch_stream)
    total_iters = tc.max_iters or tc.epochs * iters_per_epoch

    # ------------------------------------------------------------------ 2. model, sampler, optimizer
    model = prepare_model(build_model(cfg, info).to(device), use_channels_last(tc.channels_last, device), tc.compile)
    sampler = build_sampler(cfg, info) if cfg.needs_samples else None
    buffer = build_buffer(cfg, info, device, train_set=train_set, cache_dir=run_dir if main else None) if sampler else None
    objective = build_objective(cfg.objective, sampler, buffer, info, device)
    objective.bind(model)
    classifies = model.has_classifier  # unsupervised heads (CLEL) get no accuracy
    optimizer = build_optimizer(cfg.optim, model.parameters())
    momentum = base_momentum(optimizer)  # the config's own: read before a resume loads scaled param groups
    state = TrainingState(model, optimizer, buffer, objective, streams)  # what resume and roll-back restore

    tensorboard = None
    if tc.log.tensorboard and main:  # before any training: a missing package is one line now, not after an epoch
        from hdgen_cli.train.tensorboard import TensorBoardLog

        tensorboard = TensorBoardLog(run_dir)
    live_fid = None
    if tc.fid_every and buffer is not None and main:
        from hdgen_cli.evaluation.generation import LiveFID, build_extractor
        from hdgen_cli.loading import load_feature_classifier

        judge = load_feature_classifier(tc.fid_features, info.shape, device) if tc.fid_features else None
        extractor = build_extractor(judge, tc.fid_inception_weights, device)
        live_fid = LiveFID(extractor, train_set.images, tc.fid_samples, device)

    # ------------------------------------------------------------------ 3. resume
    start_iter, best_valid, remedies, resume_note = 0, None, Remedies(), ""
    early = EarlySign(gc.early_rise)
    if resume is not None:
        ckpt = load_checkpoint(resume)
        load_model_state(model, ckpt)  # names the mismatch when the checkpoint is another model's
        saved_world = ckpt.position.get("world_size", 1)
        captured = ckpt.captured()
        own = section(ckpt.tensors, f"rank{rank}") if rank and saved_world == dist.world_size() else {}
        if own:  # this rank's own chains, data position and RNG
            captured = Captured(captured.iteration, {**captured.tensors, **own}, captured.optim_meta)
        state.restore(captured, str(ckpt.path), model=False, streams=saved_world == dist.world_size())
        if rank and not own:  # only rank 0's generator states were saved: the others draw their own again
            torch.manual_seed(tc.seed + rank + ckpt.position.get("iteration", 0))
        if saved_world != dist.world_size():
            resume_note = (f"; it ran on {saved_world} process(es), this on {dist.world_size()}: the data order "
                           "starts afresh and the other ranks' chains from rank 0's buffer")
        start_iter, best_valid = ckpt.position.get("iteration", 0), ckpt.position.get("best_valid")
        remedies = Remedies.from_dict(ckpt.position.get("guard"))
        early = EarlySign.from_dict(gc.early_rise, ckpt.position.get("early_sign"))

    def apply_remedies() -> None:
        if sampler is not None:
            sampler.steps = scaled_steps(cfg.sampler.steps, remedies.steps_scale)
        objective.lr_scale, objective.guard_l2 = remedies.lr_scale, remedies.l2_weight
        if remedies.momentum_scale != 1.0:  # untouched otherwise, so a run never remedied is bit for bit the same
            set_momentum(optimizer, momentum, remedies.momentum_scale)

    apply_remedies()
    # Under torchrun the objective's network calls go through DDP (gradients averaged on backward);
    # samplers keep using the plain model.
    train_model = dist.replicate(model, device)
    objective.replicate(lambda module: dist.replicate_module(module, device))

    def save(names: list[str], captured: Captured) -> None:
        """Rank 0 writes; under torchrun every rank calls this, sending its own buffer, data
        position and RNG (saved as `rank<r>.`), so a resume on as many processes is exact."""
        if dist.world_size() > 1:  # one process has no other ranks' state to fetch
            parts = dist.gather_to_main({k: v.cpu() for k, v in per_rank(captured.tensors).items()})
            if main:
                others = {f"rank{r}.{k}": v for r, part in enumerate(parts) if r for k, v in part.items()}
                captured = Captured(captured.iteration, {**captured.tensors, **others}, captured.optim_meta)
        if main:
            position = {"iteration": captured.iteration, "epoch": captured.iteration / iters_per_epoch,
                        "best_valid": best_valid, "guard": remedies.to_dict(), "early_sign": early.to_dict(),
                        "world_size": dist.world_size()}
            for name in names:
                save_checkpoint(run_dir / name, captured, config=cfg, info=info, position=position)

    def calibrate_for_checkpoint(it: int, when: str | None = None) -> None:
        dist.average_buffers(model)  # one set of BatchNorm running statistics for all ranks
        calibrated = model.calibrate(train_set, cfg.data.pixel_range)  # GMMC's gamma-hat
        if calibrated:
            monitor.event(f"{when or f'iteration {it}'}: " + "  ".join(f"{k} {v:.4g}" for k, v in calibrated.items()),
                          {"iter": it, **calibrated})

    keep_at = set(tc.keep_iters)
    # ------------------------------------------------------------------ 4. loop
    guard = DivergenceGuard(gc)
    good = state.capture(start_iter)  # the last good state: what a divergence rolls back to
    with Monitor(run_dir / "metrics.jsonl" if main else None, quiet=quiet or not main, total_iters=total_iters,
                 tensorboard=tensorboard) as monitor:
        monitor.status = guard_status(gc, remedies, sampler.steps if sampler else None)
        if leftovers:
            monitor.event(f"removed {len(leftovers)} unfinished write(s) of a killed run: "
                          + ", ".join(p.name for p in leftovers))
        monitor.event(f"training {cfg.name} on {cfg.data.name} ({len(train_set)} images, {iters_per_epoch} it/epoch, "
                      f"{total_iters} iterations) on {device}; run dir {run_dir}")
        if resume is not None:
            monitor.event(f"resumed from {ckpt.path} at iteration {start_iter}{resume_note}", {"iter": start_iter})
        model.train()
        it = start_iter
        while it < total_iters:
            it += 1
            epoch = (it - 1) // iters_per_epoch
            lr = lr_at(cfg.optim, it, epoch, total_iters) * remedies.lr_scale
            for group in optimizer.param_groups:
                group["lr"] = lr
            objective.epoch, objective.iteration, objective.total_iters = (it - 1) / iters_per_epoch, it, total_iters

            x_lab, y_lab = streams["ce"].next() if "ce" in streams else (None, None)
            x_data = streams["px"].next()[0] if "px" in streams else None
            out = train_step(train_model, objective, optimizer, x_lab, y_lab, x_data,
                             amp=lambda: autocast(tc.precision, device), clip=remedies.clip_norm)
            guard.observe(out, it)  # on the device: no sync here

            # -------------------------------------------------------------- 4a. check point
            logging = it % tc.log_every == 0 or it == total_iters
            epoch_end = it % iters_per_epoch == 0 or it == total_iters
            periodic = tc.ckpt_every_iters > 0 and it % tc.ckpt_every_iters == 0
            kept = it in keep_at
            if not (logging or epoch_end or periodic or kept):
                continue
            problem = guard.verdict()  # one host sync per check point
            if problem is not None:
                if gc.on_divergence == "stop" or remedies.recoveries >= gc.recoveries:
                    give_up(problem, gc, remedies, good.iteration, guard.snapshot(run_dir, main), run_dir / LAST,
                            monitor, it)
                remedies = remedies.next(gc, objective.energy_penalty)
                before = sampler.steps if sampler is not None else None
                state.restore(good, "the last good state")
                early.roll_back(good.iteration)
                torch.manual_seed(tc.seed + rank + 7919 * remedies.recoveries)  # fresh noise after the roll-back
                if "reset_buffer" in gc.remedies and buffer is not None:
                    buffer.reset()
                apply_remedies()
                what = describe(gc, remedies, before, sampler.steps if sampler is not None else None,
                                objective.energy_penalty)
                monitor.event(f"divergence at {problem}; rolled back to iteration {good.iteration}{what} "
                              f"(recovery {remedies.recoveries} of {gc.recoveries})",
                              {"iter": it, "divergence": problem, "rolled_back_to": good.iteration, **remedies.to_dict()})
                monitor.status = guard_status(gc, remedies, sampler.steps if sampler else None)
                it = good.iteration
                continue
            if logging:
                values = {k: _scalar(v) for k, v in {"loss": out.loss, **out.terms, **out.stats}.items()}
                record = {"iter": it, "epoch": round(it / iters_per_epoch, 3), "lr": lr}
                record.update(dist.mean_across_ranks(values))
                guard.record_loss(record["loss"])
                monitor.step(record)  # adds the E gap
                rise = early.update(it, record.get("gap"))
                if rise is not None:
                    monitor.event(f"early sign at iteration {it}: E gap {record['gap']:.3g}, {rise:.3g} above its "
                                  f"recent median; no new good state until it settles (the last: iteration "
                                  f"{good.iteration})", {"iter": it, "early_sign": rise})

            # -------------------------------------------------------------- 4b. epoch end, checkpoints
            writes = [LAST] if periodic else []  # mid-epoch: the state as it is (no calibration)
            if kept:  # a training budget to evaluate: calibrated like an epoch end (gamma-hat is not trained)
                writes.append(kept_name(it))
                if not epoch_end:
                    calibrate_for_checkpoint(it)
            if epoch_end:
                done_epochs = math.ceil(it / iters_per_epoch)
                evaluating = classifies and splits.valid is not None and (done_epochs % tc.eval_every == 0 or it == total_iters)
                if (done_epochs % tc.ckpt_every == 0 or it == total_iters) and LAST not in writes:
                    writes.append(LAST)
                if tc.keep_every and done_epochs % tc.keep_every == 0:
                    writes.append(f"epoch-{done_epochs:04d}.safetensors")
                if evaluating or writes:
                    calibrate_for_checkpoint(it, f"epoch {done_epochs}")
                if tensorboard is not None:
                    tensorboard.epoch(it, model, train_set.images, buffer.images if buffer is not None else None,
                                      cfg.data.pixel_range)
                if live_fid is not None and done_epochs % tc.fid_every == 0:
                    fid = live_fid(buffer.images, cfg.data.pixel_range)
                    monitor.event(f"epoch {done_epochs}: buffer FID {fid:.2f}", {"iter": it, "fid": fid})
                if evaluating:
                    valid = classify_metrics(model, splits.valid, cfg.data.pixel_range, sigma=cfg.data.eval_sigma)
                    if best_valid is None or valid["accuracy"] > best_valid:
                        writes.append(BEST)
                        best_valid = valid["accuracy"]
                    monitor.event(f"epoch {done_epochs}: valid accuracy {valid['accuracy']:.4f}",
                                  {"iter": it, "valid_accuracy": valid["accuracy"], "valid_nll": valid["nll"]})
            if early.raised and it < total_iters:  # last.safetensors stays a good state, so a resume rolls back
                writes = [w for w in writes if w != LAST]  # where the uninterrupted run does
            if writes:
                captured = state.capture(it)
                save(writes, captured)
                if not early.raised:  # a checkpoint is a good state too, unless the early sign is up
                    good = captured
            if it - good.iteration >= gc.snapshot_every and not early.raised:
                good = state.capture(it)

        # -------------------------------------------------------------- 5. finish
        # The loop's last iteration already wrote it; only a resume with nothing left to do has not.
        last = run_dir / LAST
        if start_iter >= total_iters:
            save([LAST], state.capture(total_iters))
        test = {"accuracy": None, "nll": None}
        if classifies:
            test = classify_metrics(model, splits.test, cfg.data.pixel_range, sigma=cfg.data.eval_sigma)
            monitor.event(f"test accuracy {test['accuracy']:.4f}  nll {test['nll']:.4f}",
                          {"test_accuracy": test["accuracy"], "test_nll": test["nll"]})
        samples_png = None
        if buffer is not None:
            if main:
                samples_png = str(write_final_samples(model, sampler, buffer, cfg, info, run_dir))
        seconds = round(time.perf_counter() - t_start, 2)  # this session's share, for `hdgen report`
        monitor.event(f"finished: {total_iters} iterations, {seconds:.0f} s", {"iter": total_iters, "seconds": seconds})

    best = run_dir / BEST
    return TrainResult(str(run_dir), str(last), str(best) if best.exists() else None, total_iters,
                       round(total_iters / iters_per_epoch, 3), test["accuracy"], test["nll"], best_valid, samples_png,
                       seconds, remedies.recoveries, list(remedies.applied))


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
        from hdgen_cli.sampling import generate

        images, _ = generate(model, sampler, n, cfg.output.final_sample_steps, buffer.init, buffer=buffer)
    else:
        images = buffer.images[torch.randperm(buffer.size, device=buffer.images.device)[:n]].cpu()
    return write_grid(images, info.pixel_range, run_dir / "samples.png")
