"""Evaluation results live in the run: RUN/evaluations/<command>-<time>.json, plots beside it."""

import json
from pathlib import Path

import pytest

from hdgen_cli import records
from hdgen_cli.records import Record, read_records
from hdgen_cli.cli.app import run
from tests.conftest import TINY


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "run"
    assert run(["train", "-p", "quickstart", "--out", str(out), "--quiet", *TINY]) == 0
    return out


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_every_evaluation_command_records_its_result(trained, capsys):
    commands = {"evaluate": ["evaluate"], "calibrate": ["calibrate", "--bins", "5"],
                "ood": ["ood", "--score", "grad-norm", "--n", "20"], "attack": ["attack", "--n", "4", "--steps", "1"],
                "sample": ["sample", "--n", "2", "--steps", "1"]}
    for command, argv in commands.items():
        assert run([*argv, "--ckpt", str(trained), "--json"]) == 0, command
        printed = _json(capsys)
        kept = json.loads(Path(printed["record"]).read_text())
        assert Path(printed["record"]).parent == trained / "evaluations" and kept["command"] == command
        assert {k: v for k, v in kept.items() if k not in ("command", "time", "started", "seconds")} == \
            {k: v for k, v in printed.items() if k != "record"}, command  # the record is what was printed
    assert [r["command"] for r in read_records(trained)] == list(commands)
    ood = read_records(trained, "ood")[0]
    stem = Path(ood["file"]).stem
    assert all(Path(r["png"]).name.startswith(stem + "-grad-norm-") for r in ood["results"])  # plots beside it


def test_names_never_collide_and_a_read_only_run_keeps_no_record(tmp_path, monkeypatch):
    first, second = Record(tmp_path, "evaluate"), None
    assert first.write({"accuracy": 0.5}) is not None
    second = Record(tmp_path, "evaluate")
    assert second.name != first.name and second.write({"accuracy": 0.6}) != first.folder / f"{first.name}.json"
    assert [r["accuracy"] for r in read_records(tmp_path)] == [0.5, 0.6]
    (tmp_path / "evaluations" / "broken.json").write_text("{not json")
    assert len(read_records(tmp_path)) == 2  # a half-written file is not a record

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(records, "write_text_atomically", refuse)
    assert Record(tmp_path, "evaluate").write({"accuracy": 0.7}) is None
