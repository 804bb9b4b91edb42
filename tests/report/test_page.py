"""`hdgen report`: one self-contained page with every section, for one run or several."""

import json
import re
import shutil
import subprocess

import pytest

from hdgen_cli.cli.app import run
from hdgen_cli.report import collect
from hdgen_cli.report.figures import _panels, training_curves
from tests.conftest import TINY

SECTIONS = ["summary", "curves", "samples", "calibration", "ood", "robustness", "config"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny quickstart runs; the first evaluated with every command, the second with a forced
    divergence that the guard rolled back (lr 1, remedy lower_lr)."""
    root = tmp_path_factory.mktemp("report")
    first, second = root / "first", root / "second"
    assert run(["train", "-p", "quickstart", "--out", str(first), "--quiet", *TINY]) == 0
    for argv in (["evaluate"], ["calibrate", "--bins", "5"], ["ood", "--score", "logpx", "--n", "20"],
                 ["attack", "--n", "4", "--steps", "1", "--eps", "8/255"], ["sample", "--n", "4", "--steps", "2"]):
        assert run([*argv, "--ckpt", str(first), "--quiet"]) == 0, argv
    assert run(["train", "-p", "quickstart", "--out", str(second), "--quiet", *TINY, "optim.lr=1.0", "train.max_iters=30",
                "train.log_every=2", "train.guard.remedies=lower_lr", "train.guard.lr_factor=0.001",
                "train.guard.snapshot_every=2"]) == 0
    return first, second


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_one_run_page_has_every_section_and_stands_alone(runs, capsys):
    first, _ = runs
    capsys.readouterr()
    assert run(["report", str(first), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    page = (first / "report.html").read_text()
    assert result["report"] == str(first / "report.html") and result["bytes"] < 5_000_000
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"(https?:)?//[a-z]|\burl\(|@import", text)  # nothing fetched from anywhere
    images = _images(page)
    assert len(images) >= 6 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "not evaluated" not in page  # every evaluation section found its record
    summary = page[page.index('id="summary"'):page.index('id="curves"')]
    assert "quickstart" in summary and "logpx vs interp" in summary and "8/255" in summary


def test_two_runs_compare_on_one_page_with_the_divergence(runs, tmp_path, capsys):
    first, second = runs
    out = tmp_path / "both.html"
    assert run(["report", str(first), str(second), "--out", str(out)]) == 0
    page = out.read_text()
    assert page.count("<tr><td>") == 2 and "first" in page and "second" in page
    data = [collect(first), collect(second)]
    assert any("divergence" in e for e in data[1].events)
    titles = [title for title, _ in _panels(data)]
    assert "loss term: loss" in titles and any(len({line[1].name for line in found}) == 2 for _, found in _panels(data))
    assert training_curves(data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_summary(runs, capsys):
    first, second = runs
    assert run(["report", str(first), str(second), "--format", "md", "--out", str(first / "r.md")]) == 0
    text = (first / "r.md").read_text()
    assert text.startswith("# hdgen report") and "| run | method |" in text and "divergence(s); at iteration" in text
    assert "roll-back(s), rescued; remedies lower_lr" in text  # the result says it was obtained with a remedy


BROWSERS = [b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)]


@pytest.mark.skipif(not BROWSERS, reason="headless Chromium is not installed (Debian: apt install chromium)")
def test_the_page_renders_in_headless_chromium(runs, tmp_path):
    first, _ = runs
    assert run(["report", str(first), "--out", str(tmp_path / "page.html")]) == 0
    cmd = [BROWSERS[0], "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", f"file://{tmp_path / 'page.html'}"]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    for section in SECTIONS:
        assert f'id="{section}"' in dom
    assert len(_images(dom)) >= 6


def test_the_guard_cell_says_how_a_run_with_roll_backs_ended():
    from hdgen_cli.report.summary import guard_cell

    roll = {"divergence": "iteration 9: |E gap| 20 > 1e+01", "iter": 10, "applied": ["lower_momentum", "energy_l2"]}
    done, gave_up = {"seconds": 3.0, "iter": 40}, {"gave_up": True, "message": "training diverged"}
    assert guard_cell([]) == "" and guard_cell([done]) == ""
    assert guard_cell([roll, done]) == "1 roll-back(s), rescued; remedies lower_momentum, energy_l2"
    assert guard_cell([roll, roll, gave_up]).startswith("2 roll-back(s), gave up")
    assert guard_cell([roll]).startswith("1 roll-back(s), unfinished")  # killed after its roll-back
    assert guard_cell([gave_up]) == "0 roll-back(s), gave up"  # on_divergence=stop
    assert guard_cell([roll, gave_up, done]).startswith("1 roll-back(s), rescued")  # resumed and finished
