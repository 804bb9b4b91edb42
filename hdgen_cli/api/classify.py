"""`api.evaluate` and `api.calibrate`: accuracy, NLL and calibration of p(y|x) on a split."""

from __future__ import annotations

from pathlib import Path

from hdgen_cli.api.common import classifier_and_split, protocol
from hdgen_cli.errors import UsageError
from hdgen_cli.evaluation import classify_metrics
from hdgen_cli.evaluation.calibration import calibration
from hdgen_cli.evaluation.plots import reliability_diagram
from hdgen_cli.files import check_writable
from hdgen_cli.records import Record


def evaluate(path: str | Path, split: str = "test", sigma: float | None = None, device: str = "auto",
             data_overrides: list[str] | None = None, record: bool = True) -> dict:
    """Top-1 accuracy and NLL of a checkpoint on its dataset's test (or validation) split (and
    GMMC's gamma-hat, estimated on the training split after training). Recorded in the run unless
    `record` is off (`api.records`)."""
    loaded, cfg, data = classifier_and_split(path, split, device, data_overrides, "accuracy to evaluate")
    sigma = cfg.data.eval_sigma if sigma is None else sigma
    metrics = classify_metrics(loaded.model, data, cfg.data.pixel_range, sigma=sigma)
    result = {**metrics, **protocol(loaded, cfg, split, sigma)}
    return Record(loaded.checkpoint.path.parent, "evaluate").keep(result) if record else result


def calibrate(path: str | Path, bins: int = 20, split: str = "test", sigma: float | None = None,
              device: str = "auto", data_overrides: list[str] | None = None, plot: str | Path | None = None,
              record: bool = True) -> dict:
    """ECE with `bins` equal-width confidence bins, the bin table, and a reliability diagram PNG
    (default: RUN/evaluations/calibrate-<time>-reliability-<split>.png); with them the
    mean confidence against accuracy, the logit scale and the ECE after temperature scaling, T
    fitted on the validation split (or, when the run held none out or that is the split measured,
    on a seeded half of the measured split, the other half measuring it)."""

    if bins < 1:
        raise UsageError(f"--bins {bins} must be at least 1")
    loaded, cfg, data, valid = classifier_and_split(path, split, device, data_overrides, "p(y|x) to calibrate",
                                                    with_valid=True)
    sigma = cfg.data.eval_sigma if sigma is None else sigma
    slot = Record(loaded.checkpoint.path.parent, "calibrate")
    png = Path(plot) if plot else slot.png(f"reliability-{split}")
    check_writable(Path(plot).parent if plot else slot.folder.parent, "--out")
    result = calibration(loaded.model, data, cfg.data.pixel_range, bins, sigma, fit_on=valid if split == "test" else None)
    result["png"] = str(reliability_diagram(result["table"], result["ece"], png))
    result = {**result, **protocol(loaded, cfg, split, sigma)}
    return slot.keep(result) if record else result
