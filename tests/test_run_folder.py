"""engine.run_folder: a run folder is one run — a new run is staged beside OUT and swapped in whole at its first
write, so a failure leaves the older run intact or nothing."""
import pytest

from toyviz.engine import trainer as trainer_module
from toyviz.engine.run_folder import RunFolder
from toyviz.experiments.runs import train_run


def _entries(parent):
    return sorted(p.name for p in parent.iterdir())


def test_a_new_run_replaces_an_old_one_whole(tiny_cfg, tmp_path):
    out = tmp_path / "run"
    train_run(tiny_cfg.replace(**{"optim.iters": 3}), out, quiet=True)
    (out / "error.txt").write_text("old\n")
    train_run(tiny_cfg.replace(**{"optim.iters": 5, "seed": 1}), out, checkpoint_every=2, quiet=True)
    folder = RunFolder(out)
    assert folder.config().seed == 1 and len(folder.stats()) == 5 and folder.trainer().iteration == 5
    assert (out / "error.txt").exists() and _entries(tmp_path) == ["run"]


@pytest.mark.parametrize("old_run", [False, True])
def test_a_failure_writing_the_checkpoint_leaves_the_old_run_or_nothing(tiny_cfg, tmp_path, monkeypatch, old_run):
    out = tmp_path / "run"
    if old_run:
        train_run(tiny_cfg.replace(**{"optim.iters": 3}), out, quiet=True)
        before = {name: (out / name).read_bytes() for name in _entries(out)}

    def disk_full(obj, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trainer_module, "atomic_torch_save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        train_run(tiny_cfg.replace(**{"optim.iters": 4, "seed": 2}), out, checkpoint_every=2, quiet=True)
    if old_run:
        assert _entries(tmp_path) == ["run"]
        assert {name: (out / name).read_bytes() for name in _entries(out)} == before
    else:
        assert _entries(tmp_path) == []


def test_a_failure_before_any_write_leaves_no_folder(tiny_cfg, tmp_path):
    out = tmp_path / "deep" / "run"
    with pytest.raises(ValueError):
        train_run(tiny_cfg, out, checkpoint_every=0, quiet=True)
    assert not out.exists() and _entries(tmp_path / "deep") == []


def test_history_in_memory_is_a_window_and_stats_jsonl_stays_complete(tiny_cfg, tmp_path, monkeypatch):
    from toyviz.engine import phases
    from toyviz.experiments import runs
    cfg = tiny_cfg.replace(**{"optim.iters": 40})
    full = train_run(cfg, tmp_path / "full", checkpoint_every=100, quiet=True)
    assert len(full.history) == 40
    monkeypatch.setattr(phases, "HISTORY_WINDOW", 10)
    monkeypatch.setattr(runs, "STATS_EVERY", 5)
    t = train_run(cfg, tmp_path / "windowed", checkpoint_every=100, quiet=True)
    plain = [s for s in t.history if "eval/modes" not in s]
    assert len(plain) <= 11 and plain[-1]["step"] == 39 and t.history[-1]["step"] == 40
    assert [s["step"] for s in t.history if "eval/modes" in s] == list(range(5, 41, 5))
    assert (tmp_path / "windowed" / "stats.jsonl").read_bytes() == (tmp_path / "full" / "stats.jsonl").read_bytes()


def test_stats_drop_a_line_cut_short(tiny_cfg, tmp_path):
    out = tmp_path / "run"
    train_run(tiny_cfg.replace(**{"optim.iters": 4}), out, quiet=True)
    with open(out / "stats.jsonl", "a") as f:
        f.write('{"step": 5, "loss/d"')
    assert [s["step"] for s in RunFolder(out).stats()] == [1, 2, 3, 4]
