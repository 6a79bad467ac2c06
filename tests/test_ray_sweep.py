import dataclasses
import socket
import subprocess
import sys

import pytest
import torch

from toyviz.commands.cli import main
from toyviz.engine import presets
from toyviz.experiments.report import build_report
from toyviz.experiments.sweep import ERROR_FILE, RunSpec, parse_grid, plan, run_state, run_sweep

TINY = {"nets.g.width": 8, "nets.d.width": 8, "optim.batch_size": 16, "optim.iters": 6,
        "viz.eval_samples": 64, "viz.metrics_every": 3, "viz.snapshot_every": 3}
TINY_ARGS = [a for k, v in TINY.items() if k != "optim.iters" for a in ("--set", f"{k}={v}")] + ["--iters", "6"]
# two grid points: one trains as a seed batch, the other (historical averaging) as single runs
GRID = ["--grid", "reg.historical_averaging=0,0.01"]


def same(a, b) -> bool:
    """Checkpoints compared by content (torch.save's archive names its temporary file, so bytes differ)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return a == b


def files_of(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "sw"
    assert main(["sweep", "--preset", "bre-toy", *TINY_ARGS, *GRID, "--seeds", "2", "--out", str(out)]) == 0
    return out


def test_a_ray_sweep_writes_the_local_backends_folders_and_report(local_sweep, tmp_path, capsys):
    out = tmp_path / "sw"
    # no Ray instance yet: the sweep starts a local one of --workers CPUs (two worker processes) and stops it
    argv = ["sweep", "--preset", "bre-toy", *TINY_ARGS, *GRID, "--seeds", "2", "--out", str(out),
            "--backend", "ray", "--workers", "2"]
    assert main(argv) == 0
    assert "4 runs trained, 0 already done, 0 failed" in capsys.readouterr().out
    assert files_of(out) == files_of(local_sweep)
    for rel in files_of(out):
        if rel.endswith(".pt"):
            assert same(torch.load(out / rel, weights_only=True), torch.load(local_sweep / rel, weights_only=True))
        else:
            assert (out / rel).read_text() == (local_sweep / rel).read_text(), rel
    assert build_report(out, at=[3, None]).markdown == build_report(local_sweep, at=[3, None]).markdown
    import ray
    assert not ray.is_initialized()                 # the instance it started is shut down

    # resuming: done runs are skipped (no Ray needed); a lost folder is trained again, as before
    assert main(argv) == 0
    assert "0 runs trained, 4 already done" in capsys.readouterr().out
    lost = out / "bre-toy+reg.historical_averaging=0.01" / "seed1"
    before = (lost / "stats.jsonl").read_text()
    (lost / "checkpoint.pt").unlink()
    assert main(argv) == 0
    assert "1 runs trained, 3 already done" in capsys.readouterr().out
    assert (lost / "stats.jsonl").read_text() == before and (lost / "checkpoint.pt").exists()


@pytest.fixture
def ray_instance():
    import ray  # the dev extra installs it
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_a_task_that_fails_fails_its_runs_only(ray_instance, tmp_path):
    good = plan(presets.get("bre-toy").replace(**TINY), [0, 1], parse_grid(["optim.lr_d=1e-3"]), tmp_path)
    cfg = good[0].cfg
    broken = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, iters="six"))   # the worker refuses it
    bad = RunSpec("broken", 0, broken, tmp_path / "broken" / "seed0")
    res = {(r.label, r.seed): r for r in run_sweep(good + [bad], workers=2, backend="ray")}
    assert ray_instance.is_initialized()            # a caller's instance is left running
    assert res[("broken", 0)].error == "ValueError: optim.iters must be an integer (got 'six')"
    assert (bad.out / ERROR_FILE).read_text().strip() == res[("broken", 0)].error
    assert (bad.out / "config.json").exists()       # so `report` lists it among the runs left out
    assert all(res[(s.label, s.seed)].error == "" and run_state(s) == "done" for s in good)
    assert not list(tmp_path.glob("**/.tmp-*"))     # every folder was renamed into place


def test_without_ray_the_backend_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)            # import fails as if not installed
    assert main(["sweep", "--preset", "bre-toy", *TINY_ARGS, "--out", str(tmp_path / "s"), "--backend", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install ray" in err[0]
    assert main(["sweep", "--preset", "bre-toy", "--out", str(tmp_path / "s"), "--address", "h:6379"]) == 2
    assert "--address" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_toyviz_never_imports_ray_by_itself():
    code = ("import sys, toyviz, toyviz.commands.cli, toyviz.experiments.sweep, toyviz.experiments.ray_sweep; "
            "print('ray' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


def test_an_address_without_a_cluster_is_refused_at_once(tmp_path, capsys):
    with socket.socket() as s:                              # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address, match in [(f"127.0.0.1:{port}", "nothing answers there"), ("headnode", "--address takes HOST:PORT")]:
        assert main(["sweep", "--preset", "bre-toy", "--out", str(tmp_path / "s"), "--backend", "ray",
                     "--address", address]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0]
    assert not (tmp_path / "s").exists()
