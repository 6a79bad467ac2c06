import subprocess
import sys

import pytest

from toyviz.commands.cli import main
from toyviz.engine.run_folder import RunFolder


def test_train_writes_a_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--preset", "bre-toy", "--iters", "12", "--set", "viz.metrics_every=6",
               "--set", "reg.bre.weight=0.5", "--out", str(out)])
    assert rc == 0
    assert "modes" in capsys.readouterr().out
    folder = RunFolder(out)
    assert folder.config().reg.bre.weight == 0.5 and folder.config().optim.iters == 12
    stats = folder.stats()
    assert len(stats) == 12 and stats[5]["eval/modes"] >= 0
    t = folder.trainer()
    assert t.iteration == 12 and t.snapshots[0]["iteration"] == 0


@pytest.mark.parametrize("argv,match", [
    (["train", "--preset", "nope", "--out", "X"], "unknown preset 'nope'"),
    (["train", "--set", "optim.lr_d=-1", "--out", "X"], "optim.lr_g and optim.lr_d must be > 0"),
    (["train", "--set", "nets.d.activation=gelu", "--out", "X"], "nets.d.activation must be one of"),
    (["train", "--set", "reg.nope=1", "--out", "X"], "unknown config key reg.nope"),
    (["train", "--set", "optim.lr=1", "--out", "X"], "unknown config key optim.lr (did you mean optim.lr_g, "
                                                     "optim.lr_d?)"),
    (["train", "--set", "reg.bre.wieght=1", "--out", "X"], "(did you mean reg.bre.weight?)"),
    (["train", "--preset", "ring8"], "train needs --out DIR (or --resume DIR)"),
    (["train", "--checkpoint-every", "0", "--out", "X"], "--checkpoint-every must be ≥ 1"),
    (["train", "--out"], "expected one argument"),
    (["bench", "nothing"], "unknown benchmark"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, argv, match, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "bre-toy", "--iters", "2", "--out", str(out)]) == 0
    assert main(["train", "--preset", "bre-toy", "--iters", "2", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_module_entry_point_and_presets(tmp_path):
    r = subprocess.run([sys.executable, "-m", "toyviz", "presets"], capture_output=True, text=True)
    assert r.returncode == 0 and "bre-toy" in r.stdout
    r = subprocess.run([sys.executable, "-m", "toyviz", "train", "--iters", "x", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_config_prints_every_field_with_its_value_and_meaning(capsys):
    import toyviz
    from toyviz.engine.config import _dotted_fields
    assert main(["config", "--preset", "ring8-bre", "--set", "optim.iters=77"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(" = ")[0] for ln in lines] == _dotted_fields(toyviz.Config)
    assert all("  # " in ln and ln.split("  # ")[1].strip() for ln in lines)
    assert any(ln.startswith("optim.iters = 77 ") for ln in lines)
    assert any(ln.startswith("reg.bre.weight = 1.0 ") and "BRE" in ln for ln in lines)
