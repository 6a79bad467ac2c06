"""The image-runs page's folders: only under the runs root (no `..`, no absolute path outside, no symlink out),
the root from the script's arguments or the environment, files read within their limits, curves by step."""
import json
import os
from pathlib import Path

import pytest

from toyviz.page.image_runs import LIST_DEPTH, find_image_runs, inside, open_image_run, runs_root
from toyviz.page.uploads import LIMITS


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "runs"
    run = r / "img"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"dataset": "cifar10"}))
    (run / "stats.jsonl").write_text('{"step": 100, "loss/d": 1.5}\n{"step": 200, "loss/d": 1.0}\n')
    for step in (200, 20):
        (run / f"samples_{step:06d}.png").write_bytes(b"")
    return r.resolve()


def test_open_a_run_under_the_root(root):
    run = open_image_run("img", root)
    assert [s for s, _ in run.samples] == [20, 200] and run.config == {"dataset": "cifar10"}
    steps, values = run.curves()["loss/d"]
    assert list(steps) == [100, 200] and list(values) == [1.5, 1.0]          # against the step, not the row
    assert open_image_run(str(root / "img"), root).path == root / "img"      # absolute, inside: fine
    (root / "empty").mkdir()
    with pytest.raises(ValueError, match="config.json is missing"):
        open_image_run("empty", root)
    with pytest.raises(ValueError, match="is not a folder"):
        open_image_run("missing", root)


def test_paths_out_of_the_root_are_refused(root, tmp_path):
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    for typed, match in [("../secret", "'..' is not allowed"), ("img/../../secret", "'..' is not allowed"),
                         (str(outside), "outside the runs root"), ("/etc", "outside the runs root")]:
        with pytest.raises(ValueError, match=match):
            open_image_run(typed, root)
    os.symlink(outside, root / "link")
    with pytest.raises(ValueError, match="a link out of the runs root"):
        open_image_run("link", root)
    os.symlink(outside / "config.json", root / "img" / "stolen.json")
    os.symlink("/etc/hostname", root / "img" / "samples_000300.png")           # a file linking out: left out
    assert [s for s, _ in open_image_run("img", root).samples] == [20, 200]
    (root / "img" / "config.json").unlink()
    os.symlink(outside / "config.json", root / "img" / "config.json")
    with pytest.raises(ValueError, match="config.json is missing"):
        open_image_run("img", root)
    assert inside(root, "img") == root / "img"


def test_files_over_their_limits_are_refused(root):
    big = LIMITS["run stats"][0] + 1
    with open(root / "img" / "stats.jsonl", "wb") as f:
        f.truncate(big)                                                        # sparse: no disk used
    with pytest.raises(ValueError, match=r"stats.jsonl is 64.0 MB; at most 64 MB"):
        open_image_run("img", root)


def test_the_runs_root_from_arguments_environment_or_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runs_root({}, []) == (tmp_path / "runs").resolve()
    assert runs_root({"TOYVIZ_RUNS_ROOT": str(tmp_path / "a")}, []) == (tmp_path / "a").resolve()
    assert runs_root({"TOYVIZ_RUNS_ROOT": "x"}, ["--runs-root", "b"]) == (tmp_path / "b").resolve()
    assert runs_root({}, ["--runs-root=c"]) == Path(tmp_path / "c").resolve()


def test_the_run_folders_under_the_root_are_listed_and_no_link_out(tmp_path):
    root, outside = tmp_path / "runs", tmp_path / "elsewhere"
    for d in ("b/img", "a", "deep/" + "/".join("x" * (LIST_DEPTH + 1)), "notarun"):
        (root / d).mkdir(parents=True)
    for d in ("b/img", "a", "deep/" + "/".join("x" * (LIST_DEPTH + 1))):
        (root / d / "config.json").write_text("{}")
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (root / "link").symlink_to(outside)
    assert find_image_runs(root) == ["a", "b/img"]          # too deep, not a run, or a link out: not listed
    assert find_image_runs(tmp_path / "missing") == []
