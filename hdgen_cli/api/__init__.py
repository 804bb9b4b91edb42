"""The Python API under the CLI: every command is one call here, importable by users.
One module per command; nothing below this package imports it. `hdgen_cli.bench` sits above it.

    from hdgen_cli import api
    cfg = api.load_config("quickstart", ["train.epochs=5"])
    result = api.train(cfg, "runs/demo")
    images, labels, info = api.sample("runs/demo", n=16, steps=100)  # y=3: class 3 (info["kept"])
    print(api.evaluate("runs/demo"))
"""

from hdgen_cli.api.attack import attack, parse_eps
from hdgen_cli.api.classify import calibrate, evaluate
from hdgen_cli.api.generation import generation_metrics
from hdgen_cli.api.interop import export_checkpoint, import_checkpoint
from hdgen_cli.api.ood import ood
from hdgen_cli.report import write_report as report
from hdgen_cli.api.sample import latent_conditions, sample
from hdgen_cli.loading import LoadedModel, load_encoder, load_model, with_sampler
from hdgen_cli.parts import load_config, override_config
from hdgen_cli.api.training import FIXED_ON_RESUME, train

__all__ = ["FIXED_ON_RESUME", "LoadedModel", "attack", "calibrate", "evaluate", "export_checkpoint", "generation_metrics", "import_checkpoint", "latent_conditions", "load_config",
           "load_encoder", "load_model", "ood", "override_config", "parse_eps", "report", "sample", "train", "with_sampler"]
