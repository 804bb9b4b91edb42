"""`hdgen sample`: draw samples from a checkpoint, write a PNG grid and a safetensors file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from hdgen_cli.cli.common import (CkptOpt, DeviceOpt, JsonOpt, QuietOpt, checkpoint_or_newest, emit_json, emit_lines,
                                  err_console)
from hdgen_cli.errors import UsageError


def _new_name(folder: Path, stem: str) -> Path:
    """`folder/stem.png`, or `stem-2.png`, `stem-3.png`, ... : a default name never overwrites earlier samples."""
    k = 1
    while True:
        png = folder / (f"{stem}.png" if k == 1 else f"{stem}-{k}.png")
        if not png.exists() and not png.with_suffix(".safetensors").exists():
            return png
        k += 1


def sample(
    ckpt: CkptOpt = None,
    klass: Optional[int] = typer.Option(None, "--class", "-k", min=0, help="sample p(x|y=K) instead of p(x)"),
    steps: Optional[int] = typer.Option(None, "--steps", min=0, help="sampler steps (default: the training sampler's)"),
    n: int = typer.Option(64, "--n", "--count", min=1, help="number of samples; --count under torchrun"),
    init: str = typer.Option("noise", "--init", help="noise (fresh chains from p0) or buffer (saved replay buffer)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="PNG path (default <run dir>/sample-*.png)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="random seed"),
    conditional: Optional[str] = typer.Option(None, "--conditional", help="with --class: filter (JEM's protocol: keep the "
                                              "unconditional chains the model classifies as K; the default) or energy "
                                              "(chains on E(x, y); GMMC's default)"),
    inject: bool = typer.Option(False, "--gmmc-inject", help="GMMC: draw a new latent target z at every step (eq. 10)"),
    like: Optional[list[str]] = typer.Option(None, "--like", help="CLEL: condition on an image or a folder of images; "
                                             "repeat to compose several conditions"),
    beta_c: Optional[float] = typer.Option(None, "--beta-c", min=0.0, help="CLEL: strength of each condition (default: the model's beta)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing --out file"),
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Sample unconditionally or for one class; writes PNG + .safetensors (images in [0, 1])."""
    from hdgen_cli import api, progress
    from hdgen_cli.records import Record
    from hdgen_cli.files import check_writable
    from hdgen_cli.runs import resolve_checkpoint_path
    from hdgen_cli.train.outputs import write_grid, write_samples

    ckpt = checkpoint_or_newest(ckpt)

    if out is not None and not force and (out.exists() or out.with_suffix(".safetensors").exists()):
        raise UsageError(f"--out {out} already exists; pass --force to overwrite it, or another --out")
    check_writable(out.parent if out else resolve_checkpoint_path(ckpt).parent, "--out")  # before sampling
    with progress.reporting(quiet):
        images, labels, details = api.sample(ckpt, n=n, steps=steps, y=klass, init=init, device=device, seed=seed,
                                             inject=inject, like=like, beta_c=beta_c, conditional=conditional)
    if details["n"] < n:
        err_console.print(f"warning: kept {details['n']} of {n} samples: only {details['kept']} of {details['chains']} "
                          f"chains ended in class {klass}; --conditional energy draws exactly {n}")
    run_dir = Path(details["checkpoint"]).parent
    kind = "like" if like else ("uncond" if klass is None else f"class{klass}")
    png = out or _new_name(run_dir, f"sample-{kind}-{details['steps']}steps")
    tensor_path = png.with_suffix(".safetensors")
    write_grid(images, "unit", png)
    write_samples(images, labels, "unit", tensor_path, {"details": json.dumps(details)})
    result = Record(run_dir, "sample").keep({**details, "png": str(png), "tensors": str(tensor_path)})  # for `hdgen report`
    if json_out:
        emit_json(result)
    else:
        chosen = [("conditional", details["conditional"])] if klass is not None else []
        if "acceptance" in details:
            chosen.append(("kept", f"{details['kept']} of {details['chains']} chains"))
        emit_lines([("samples", details["n"]), ("steps", details["steps"]), ("init", init), ("seed", details["seed"]),
                    ("class", "-" if klass is None else klass), *chosen, ("png", png), ("tensors", tensor_path)])
