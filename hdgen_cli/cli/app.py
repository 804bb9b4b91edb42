"""`hdgen` entry point: the Typer app and the one-line error contract.

Bad input of any kind becomes one line on stderr, exit code 2 (usage) or 1 (runtime), and no
traceback unless HDGEN_DEBUG=1. Results go to stdout (one JSON object with --json); progress to stderr.
"""

from __future__ import annotations

import os
import sys

import typer

from hdgen_cli.cli import (attack_cmd, bench_cmd, calibrate_cmd, evaluate_cmd, interop_cmd, ood_cmd, presets_cmd,
                           report_cmd, sample_cmd, train_cmd)
from hdgen_cli.errors import HdgenError

app = typer.Typer(
    name="hdgen",
    help="Hybrid discriminative-generative energy-based models: JEM and its successors in one engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("train")(train_cmd.train)
app.command("sample")(sample_cmd.sample)
app.command("evaluate")(evaluate_cmd.evaluate)
app.command("calibrate")(calibrate_cmd.calibrate)
app.command("ood")(ood_cmd.ood)
app.command("attack")(attack_cmd.attack)
app.command("report")(report_cmd.report)
app.command("bench")(bench_cmd.bench)
app.command("import")(interop_cmd.import_)
app.command("export")(interop_cmd.export)
app.add_typer(presets_cmd.app, name="presets")


def _fail(message: str, code: int) -> int:
    first = " ".join(str(message).split())  # one line, whatever the message held
    print(f"hdgen: error: {first}", file=sys.stderr)
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this directly)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="hdgen", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # bad option, missing argument, bad type
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `hdgen` or `hdgen presets`: show the help
            print(exc.ctx.get_help())
            return 0
        return _fail(exc.format_message() + " (see `hdgen --help`)", 2)
    except typer.Abort:
        return _fail("aborted", 130)
    except KeyboardInterrupt:
        return _fail("interrupted; the last checkpoint in the run directory is intact", 130)
    except HdgenError as exc:
        if os.environ.get("HDGEN_DEBUG") == "1":
            raise
        return _fail(str(exc), exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the contract is one line, never a traceback
        if os.environ.get("HDGEN_DEBUG") == "1":
            raise
        return _fail(f"{type(exc).__name__}: {exc} (run with HDGEN_DEBUG=1 for the traceback)", 1)


def main() -> None:
    from hdgen_cli import distributed

    if distributed.launched() and not distributed.is_main():
        sys.stdout = open(os.devnull, "w")  # under torchrun only rank 0 prints results; errors still reach stderr
    code = run()
    distributed.teardown()
    sys.exit(code)
