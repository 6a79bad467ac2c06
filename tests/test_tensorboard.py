"""tensorboard_log.py: `train --tensorboard` and `report --tensorboard`, read back with TensorBoard's own reader."""
import json
import sys

import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from toyviz.commands.cli import main  # noqa: E402
from toyviz.engine import presets  # noqa: E402
from toyviz.engine.run_folder import RunFolder  # noqa: E402

TINY = ["--preset", "bre-toy", "--iters", "12", "--seed", "3", "--set", "viz.metrics_every=6",
        "--set", "viz.snapshot_every=5", "--set", "viz.eval_samples=200", "--set", "viz.resolution=32",
        "--set", "optim.batch_size=32"]


def events(folder) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tb") / "run"
    assert main(["train", *TINY, "--out", str(out), "--tensorboard"]) == 0
    return out


def test_scalars_are_the_stats_jsonl_numbers(run):
    acc = events(run / "tensorboard")
    stats = RunFolder(run).stats()
    keys = {k for row in stats for k in row} - {"step"}
    assert keys and set(acc.Tags()["scalars"]) <= keys
    for key in keys:
        want = {row["step"]: row[key] for row in stats if key in row and row[key] is not None}
        got = {e.step: e.value for e in acc.Scalars(key)} if want else {}
        assert set(got) == set(want), key                  # null (not finite) in stats.jsonl: no scalar either
        for step, v in want.items():
            assert got[step] == pytest.approx(v, rel=1e-6, abs=1e-6), (key, step)   # float32 in the event file
    assert [e.step for e in acc.Scalars("eval/modes")] == [6, 12]


def test_images_every_snapshot_and_the_config_as_text(run):
    acc = events(run / "tensorboard")
    prob, regions = sorted(acc.Tags()["images"])
    assert regions == "maps/regions, layers 1-4" and prob == "maps/D(x)"
    for tag in (regions, prob):
        images = acc.Images(tag)
        assert [e.step for e in images] == [0, 5, 10, 12]   # the untrained nets, every snapshot_every, the end
        assert (images[0].width, images[0].height) == (32, 32)
    (text,) = acc.Tensors("config/text_summary")
    body = text.tensor_proto.string_val[0].decode()
    assert "seed **3**" in body and "preset **bre-toy**" in body
    cfg = json.loads(body.split("```json\n", 1)[1].split("\n```", 1)[0])
    assert cfg == RunFolder(run).config().to_dict()
    assert set(acc.PluginTagToContent("hparams")) >= {"_hparams_/experiment", "_hparams_/session_start_info"}


def test_train_prints_where_the_events_are(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *TINY, "--iters", "2", "--out", str(out), "--tensorboard"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"-> {out} (TensorBoard: {out / 'tensorboard'})")


def test_without_the_package_train_refuses_before_writing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)     # import fails as if not installed
    assert main(["train", *TINY, "--out", str(tmp_path / "r"), "--tensorboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install tensorboard" in err[0]
    assert list(tmp_path.iterdir()) == []


def write_run(root, label, seed, modes, rkl):
    folder = root / label / f"seed{seed}"
    folder.mkdir(parents=True)
    presets.get("ring8").replace(seed=seed, **{"optim.iters": 200}).to_json(folder / "config.json")
    rows = [{"step": s, "eval/modes": m, "eval/hq": 0.5, "eval/reverse_kl": k, "regions/l1": 10.0 + s}
            for s, m, k in zip((100, 200), modes, rkl)]
    (folder / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_report_emits_one_tensorboard_run_per_label_and_seed(tmp_path, capsys):
    sweep = tmp_path / "sw"
    write_run(sweep, "plain", 0, [2, 5], [None, 0.5])
    write_run(sweep, "plain", 1, [3, 6], [1.0, 0.3])
    write_run(sweep, "bre", 0, [4, 8], [0.4, 0.05])
    tb = tmp_path / "tb"
    assert main(["report", str(sweep), "--no-plots", "--tensorboard", str(tb)]) == 0
    captured = capsys.readouterr()
    assert (sweep / "report.md").read_text() == captured.out               # stdout: the markdown alone
    assert str(tb) in captured.err.strip().splitlines()[-1]
    assert sorted(p.relative_to(tb).as_posix() for p in tb.glob("*/seed*")) == ["bre/seed0", "plain/seed0",
                                                                               "plain/seed1"]
    acc = events(tb / "plain" / "seed0")
    assert [(e.step, e.value) for e in acc.Scalars("eval/modes")] == [(100, 2.0), (200, 5.0)]
    assert [(e.step, e.value) for e in acc.Scalars("eval/reverse_kl")] == [(200, 0.5)]   # inf: left out
    assert [e.value for e in acc.Scalars("regions/l1")] == [110.0, 210.0]
    body = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "label **plain**" in body and "seed **0**" in body


def test_report_tensorboard_bad_out(tmp_path, capsys):
    sweep = tmp_path / "sw"
    write_run(sweep, "plain", 0, [2, 5], [0.1, 0.5])
    (tmp_path / "file").write_text("x")
    assert main(["report", str(sweep), "--no-plots", "--tensorboard", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a folder" in err[0]
    assert not (sweep / "report.md").exists()
