"""`hdgen bench`: a tiny grid end to end, skip and resume, one feature network for every method,
the verdict logic on synthetic numbers, the profiles' rule, and bad input."""

import json

import pytest

from hdgen_cli.bench import BenchSpec, Protocol, check, run_bench
from hdgen_cli.bench.claims import CLAIMS, Claim, Condition
from hdgen_cli.bench.profiles import SCALE_KEYS, load_profile
from hdgen_cli.bench.verdict import FAILS, HOLDS, MISSING, UNSURE, compare
from hdgen_cli.cli.app import run
from hdgen_cli.errors import UsageError

TINY_RUN = ["model.width=1", "train.max_iters=6", "train.log_every=3", "output.grid_size=4"]
TINY_PROTOCOL = Protocol(ood_n=40, pgd_eps=[8], pgd_steps=2, attack_n=24, bpda_n=8, bpda_steps=1, bpda_purify_steps=2,
                         bpda_eot=1, bpda_votes=2, fid_n=40, fid_steps=2)


def _spec(out, presets=("softmax", "jem"), **kw):
    return BenchSpec(presets=list(presets), seeds=1, profile="small", overrides=["data.name=digits", *TINY_RUN],
                     out=out, features="reference", protocol=TINY_PROTOCOL, device="cpu",
                     reference_overrides=["train.max_iters=6"], **kw)


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "grid"
    return out, run_bench(_spec(out), quiet=True)


def test_tiny_grid_runs_end_to_end(tiny_bench):
    out, results = tiny_bench
    assert (out / "results.md").is_file() and (out / "results.json").is_file()
    assert [r["preset"] for r in results["runs"]] == ["softmax", "jem"]
    for name in ("softmax", "jem"):
        m = results["summary"][name]
        for key in ("accuracy", "nll", "ece", "auroc.logpx.mean", "auroc.maxprob.shapes", "pgd.8", "fid.fresh",
                    "is.fresh", "s_per_iter", "peak_memory_mb", "divergences"):
            assert key in m, (name, key)
    assert "bpda.8" in results["summary"]["jem"] and "bpda.8" not in results["summary"]["softmax"]
    costs = json.loads((out / "cost.json").read_text())  # interleaved step timings, one per round
    assert set(costs) == {"softmax", "jem"} and all(len(v) == 7 and min(v) > 0 for v in costs.values())
    assert results["values"]["jem"]["train_cost"][0] == costs["jem"][0] * 6
    assert "fid.buffer" in results["summary"]["jem"]  # the EBM's replay buffer is scored too
    assert {c["id"] for c in results["claims"]} == {c.id for c in CLAIMS}
    text = (out / "results.md").read_text()
    assert "## Claims" in text and "jem-family-ece" in text and "model.width" in text
    assert "| rescued runs | diverged runs | remedies applied |" in text  # the cost table counts rescues
    assert all(r["train"]["rescued"] is False and r["train"]["remedies"] == [] for r in results["runs"])
    page = (out / "report.html").read_text()  # hdgen report's page over the grid
    assert results["report"] == str(out / "report.html") and "softmax-s1" in page and "jem-s1" in page


def test_finished_runs_are_skipped_and_a_lost_evaluation_is_redone(tiny_bench, capsys):
    out, first = tiny_bench
    stamp = (out / "jem-s1" / "last.safetensors").stat().st_mtime_ns
    (out / "jem-s1" / "result.json").unlink()
    (out / "jem-s1" / "train.json").unlink()  # as if killed after its last checkpoint
    again = run_bench(_spec(out), quiet=True)
    assert again["runs"][0] == first["runs"][0]  # softmax: skipped, same result
    assert again["runs"][1]["train"]["resumed_at"] == 6  # jem: resumed at its last iteration, nothing retrained
    # same seeds, same checkpoint: the evaluation gives the same numbers
    assert again["runs"][1]["metrics"] == first["runs"][1]["metrics"]
    assert (out / "jem-s1" / "last.safetensors").stat().st_mtime_ns >= stamp


def test_fid_features_are_one_network_for_every_method(tmp_path, monkeypatch):
    import hdgen_cli.api.generation as generation  # where the FID commands look the extractor up

    seen = []
    real = generation.build_extractor

    def spy(features, *args, **kwargs):
        seen.append(str(features.checkpoint.path))
        return real(features, *args, **kwargs)

    monkeypatch.setattr(generation, "build_extractor", spy)
    results = run_bench(_spec(tmp_path / "b", presets=("softmax", "jem", "gmmc-gen")), quiet=True)
    assert len(seen) >= 4 and len(set(seen)) == 1  # fresh and buffer FIDs of all three methods
    assert seen[0] == results["features"]["checkpoint"]
    assert "reference-digits" in seen[0] and all(f"{p}-s1" not in seen[0] for p in ("softmax", "jem", "gmmc-gen"))


def test_a_run_folder_trained_with_other_settings_is_refused(tiny_bench):
    out, _ = tiny_bench
    spec = _spec(out)
    spec.overrides = [*spec.overrides, "optim.lr=0.5"]
    with pytest.raises(UsageError, match="trained with other settings"):
        run_bench(spec, quiet=True)


# -- verdicts on synthetic numbers

def test_verdict_holds_when_the_gap_beats_the_seed_spread():
    assert compare([0.02, 0.021, 0.019], [0.06, 0.061, 0.059], "lower", 0.005).verdict == HOLDS


def test_verdict_does_not_hold_when_the_difference_is_the_other_way():
    assert compare([0.06, 0.061, 0.059], [0.02, 0.021, 0.019], "lower", 0.005).verdict == FAILS


def test_verdict_inconclusive_when_the_spread_swamps_the_gap():
    assert compare([0.90, 0.96, 0.84], [0.88, 0.80, 0.93], "higher", 0.005).verdict == UNSURE


def test_verdict_within_and_at_least():
    assert compare([0.950, 0.952], [0.955, 0.953], "within", 0.01).verdict == HOLDS
    assert compare([0.90, 0.901], [0.95, 0.951], "within", 0.01).verdict == FAILS
    assert compare([0.949, 0.950], [0.951, 0.950], "at_least", 0.005).verdict == HOLDS
    assert compare([0.90, 0.901], [0.95, 0.951], "at_least", 0.005).verdict == FAILS
    assert compare([1.0], [2.0], "at_most", 0.1, relative=True).verdict == HOLDS


def test_verdict_stability_and_missing_values():
    assert compare([0, 0, 0], [0, 1, 0], "stable").verdict == HOLDS
    assert compare([1, 0, 0], [0, 1, 0], "stable").verdict == FAILS
    assert compare([0, 0, 0], [0, 0, 0], "stable").verdict == FAILS
    assert compare([], [0.5], "higher").verdict == MISSING


def test_claims_combine_subjects_and_conditions():
    claim = Claim("x", "a beats b", "test", ("a", "c"), "b", (Condition("acc", "higher", 0.01),))
    values = {"a": {"acc": [0.9, 0.91, 0.9]}, "b": {"acc": [0.8, 0.81, 0.8]}, "c": {"acc": [0.7, 0.71, 0.7]}}
    (result,) = check(values, (claim,))
    assert [r["verdict"] for r in result["rows"]] == [HOLDS, FAILS] and result["verdict"] == FAILS


# -- profiles

def test_small_profile_only_scales():
    profile = load_profile("small")
    for table in [profile.common, *profile.per_preset.values()]:
        for key, entry in table.items():
            assert key in SCALE_KEYS and entry["why"]
    cfg, paper = profile.config("jempp-m10", []), load_profile("paper").config("jempp-m10", [])
    assert cfg.sampler.model_dump(exclude={"buffer"}) == paper.sampler.model_dump(exclude={"buffer"})
    assert cfg.objective == paper.objective and cfg.energy == paper.energy


def test_a_profile_that_changes_the_method_is_refused(tmp_path, monkeypatch):
    import shutil

    from hdgen_cli.config.presets import presets_dir

    shutil.copytree(presets_dir(), tmp_path / "presets")
    (tmp_path / "presets" / "profiles" / "cheat.toml").write_text(
        '[jem]\n"sampler.steps" = { value = 100, why = "more steps make JEM look better" }\n')
    monkeypatch.setenv("HDGEN_PRESETS_DIR", str(tmp_path / "presets"))
    with pytest.raises(UsageError, match="would change the method"):
        load_profile("cheat")


@pytest.mark.parametrize("argv, fragment", [
    (["bench", "--presets", "softmax,jemm"], "did you mean 'jem'"),
    (["bench", "--profile", "tiny"], "unknown profile 'tiny'"),
    (["bench", "data.name=digitz"], "unknown dataset 'digitz'"),
    (["bench", "--seeds", "0"], "--seeds 0"),
    (["bench", "--features", "vgg"], "unknown --features"),
    (["bench", "--presets", "softmax", "--out", "{file}"], "cannot write"),
])
def test_bench_bad_input_is_one_line_and_exit_2(argv, fragment, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = [a.replace("{file}", str(blocker)) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "b")]
    assert run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "b" / "softmax-s1").exists()  # nothing was trained


def test_results_json_is_plain_json(tiny_bench):
    out, _ = tiny_bench
    data = json.loads((out / "results.json").read_text())
    assert data["features"]["kind"] == "reference" and data["protocol"]["ood_sets"][-1] == "shapes"


def test_an_unfinished_reference_classifier_is_resumed_not_reused(tmp_path, monkeypatch):
    """A bench killed while its reference trained left a mid-schedule last.safetensors: the next
    bench goes on from it; a finished one is reused as it is."""
    import hdgen_cli.bench.reference as reference_module
    from hdgen_cli.bench.reference import reference_classifier
    from hdgen_cli.checkpoint import load_checkpoint, save_checkpoint

    over = ["data.name=digits", "train.max_iters=6", "model.width=1"]
    ckpt = reference_classifier(tmp_path, over)
    calls = []
    monkeypatch.setattr(reference_module, "train", lambda cfg, run_dir, resume=None, quiet=True: calls.append(resume))
    assert reference_classifier(tmp_path, over) == ckpt and calls == []  # finished: reused
    saved = load_checkpoint(ckpt)
    save_checkpoint(ckpt, saved.captured(), config=saved.config, info=saved.info,
                    position={**saved.position, "iteration": 3, "epoch": 3 / 22})
    reference_classifier(tmp_path, over)
    assert calls == [ckpt]
