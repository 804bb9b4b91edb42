"""Setting a training run up: its data streams and its side outputs (TensorBoard,
the live FID), before the first step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hdgen_cli import distributed as dist
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.data import BatchStream, BatchTransform, ImageSet, Splits, make_splits
from hdgen_cli.evaluation.generation import LiveFID, build_extractor
from hdgen_cli.loading import load_feature_classifier
from hdgen_cli.train.tensorboard import TensorBoardLog


@dataclass
class TrainingData:
    """The splits and the batch streams one rank trains on, and the schedule's length."""

    splits: Splits
    train_set: ImageSet  # on the device; all of it, for the gm init, calibration and TensorBoard
    streams: dict[str, BatchStream]  # "ce" (labelled batches) and/or "px" (batches for p(x))
    iters_per_epoch: int
    total_iters: int

    def next_batches(self):
        """(x_lab, y_lab, x_data): the next labelled batch and the next p(x) batch (None where unused)."""
        x_lab, y_lab = self.streams["ce"].next() if "ce" in self.streams else (None, None)
        x_data = self.streams["px"].next()[0] if "px" in self.streams else None
        return x_lab, y_lab, x_data


def setup_data(cfg: RunConfig, device: torch.device) -> TrainingData:
    """Seed this rank and load its data. Under torchrun every rank draws its own augmentations,
    chains and buffer (seed + rank) and streams its own equal shard of the images; DDP broadcasts
    rank 0's initial weights."""
    tc, rank = cfg.train, dist.rank()
    torch.manual_seed(tc.seed + rank)
    splits = make_splits(cfg.data)
    train_set = splits.train.to(device)
    shard = train_set.subset(dist.shard_indices(len(train_set), drop_last=True)) if dist.world_size() > 1 else train_set

    def stream(sc, seed_offset):
        transform = BatchTransform.from_config(sc, cfg.data, train_set.default_flip)
        return BatchStream(shard, sc.batch_size, transform, seed=tc.seed + seed_offset + 1000 * rank)

    streams = {"ce": stream(cfg.data.ce, 0)} if cfg.uses_ce_stream else {}
    if cfg.uses_px_stream:
        streams["px"] = stream(cfg.data.px, 1)
    iters_per_epoch = len(streams.get(cfg.data.epoch_by) or next(iter(streams.values())))
    return TrainingData(splits, train_set, streams, iters_per_epoch, tc.max_iters or tc.epochs * iters_per_epoch)


def side_outputs(cfg: RunConfig, run, train_set: ImageSet, run_dir: Path, device: torch.device):
    """(TensorBoard log, live FID), each None when off; rank 0 only. Made before any training, so
    a missing package or a bad judge file is one line now, not after an epoch."""
    tc = cfg.train
    if not dist.is_main():
        return None, None
    tensorboard = None
    if tc.log.tensorboard:
        tensorboard = TensorBoardLog(run_dir)
    live_fid = None
    if tc.fid_every and run.buffer is not None:

        judge = load_feature_classifier(tc.fid_features, run.info.shape, device) if tc.fid_features else None
        extractor = build_extractor(judge, tc.fid_inception_weights, device)
        live_fid = LiveFID(extractor, train_set.images, tc.fid_samples, device)
    return tensorboard, live_fid
