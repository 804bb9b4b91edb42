"""What the evaluation commands share: the loaded model and split they need, and the protocol
fields every result states."""

from __future__ import annotations

from hdgen_cli.config import override_config
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.data import make_splits
from hdgen_cli.errors import UsageError
from hdgen_cli.loading import LoadedModel, load_model


def classifier_and_split(path, split: str, device: str, data_overrides: list[str] | None, what: str,
                         with_valid: bool = False):
    """(loaded model, its config with `data_overrides`, the ImageSet of `split`) for a command that
    needs p(y|x); one-line errors for an unsupervised model, an unknown split or a shape mismatch.
    `with_valid` adds a fourth item: the validation split (None when the run held none out)."""
    loaded = load_model(path, device)
    if not loaded.model.has_classifier:
        raise UsageError(f"{loaded.checkpoint.path} is an unsupervised model ({loaded.config.name}) with no classifier; "
                         f"there is no {what} (use hdgen sample)")
    cfg = override_config(loaded.config, data_overrides or [])
    if split not in ("test", "valid"):
        raise UsageError(f"unknown --split '{split}'; use test or valid")
    splits = make_splits(cfg.data)
    data = {"test": splits.test, "valid": splits.valid}[split]
    if data is None:
        raise UsageError("this run held out no validation split (data.n_valid=0); use --split test")
    if (data.channels, data.image_size) != (loaded.info.channels, loaded.info.image_size):
        raise UsageError(f"{cfg.data.name} images are {data.channels}x{data.image_size}x{data.image_size} but the model "
                         f"expects {loaded.info.channels}x{loaded.info.image_size}x{loaded.info.image_size}; set data.image_size")
    return (loaded, cfg, data, splits.valid) if with_valid else (loaded, cfg, data)


def protocol(loaded: LoadedModel, cfg: RunConfig, split: str, sigma: float) -> dict:
    """What every evaluation result states about where its number came from."""
    out = {"dataset": cfg.data.name, "split": split, "sigma": sigma, "protocol": "clean" if sigma == 0 else "noisy",
           "checkpoint": str(loaded.checkpoint.path), "method": cfg.name, "position": loaded.checkpoint.position}
    if hasattr(loaded.model, "gamma"):  # GMMC: the gamma-hat every probability used
        out["gamma"] = float(loaded.model.gamma)
    return out

