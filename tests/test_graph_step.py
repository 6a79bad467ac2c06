"""engine/graph_step.py (optim.cuda_graph): the graph-ready step — device streams, tensor learning rates and
regularizer weights, deferred finiteness checks, statistics packed and read once — run eagerly on the CPU, where its
streams are the ordinary CPU streams, must give the ordinary step's numbers; what cannot be captured is refused
with the reason. (The capture itself needs CUDA: `python -m toyviz bench train --device cuda --cuda-graph`.)"""
import re
import subprocess
import sys

import pytest
import torch

from toyviz.engine import presets
from toyviz.engine.graph_step import GraphStep
from toyviz.engine.phases import TrainingDiverged
from toyviz.engine.run_folder import RunFolder
from toyviz.engine.seed_batch import SeedBatch
from toyviz.engine.trainer import Trainer
from toyviz.experiments.bench_training import training_rows
from toyviz.image.config import ImageConfig
from toyviz.image.trainer import ImageTrainer

GRAPH = {"optim.cuda_graph": True}
IMAGE_TINY = {"data.image_size": 16, "nets.width": 4, "nets.latent_dim": 8, "optim.batch_size": 8,
              "eval.metrics_every": 1000, "eval.samples": 40, "eval.missing_mass_steps": 0}


def _close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), k


def _weights(t) -> dict:
    return {n: {k: v.clone() for k, v in net.state_dict().items()} for n, net in t.nets.items()}


@pytest.mark.parametrize("preset", ["ring8", "ring8-bre", "bre-toy", "bre-toy-bre"])
def test_the_graph_ready_step_gives_the_eager_steps_numbers_over_20_steps(preset):
    cfg = presets.get(preset).replace(**{"viz.metrics_every": 10})       # two evaluation steps: monitors on
    eager, ready = Trainer(cfg), Trainer(cfg.replace(**GRAPH))
    assert ready.graph_step is not None and not ready.graph_step.capture
    assert all(torch.is_tensor(g["lr"]) for o in ready.optims.values() for g in o.param_groups)
    for _ in range(20):
        _close(eager.step(), ready.step())
    a, b = _weights(eager), _weights(ready)
    for net in a:
        for k in a[net]:
            torch.testing.assert_close(a[net][k], b[net][k], rtol=1e-5, atol=1e-6)
    if cfg.reg.bre.schedule == "linear":                    # bre-toy-bre: the weight tensor follows the schedule
        w = presets.get(preset).reg.bre.weight * (1 - 19 / cfg.optim.iters)
        assert ready.graph_step.weights["bre"][1].item() == pytest.approx(w)


def test_the_step_makes_one_host_read_after_it():
    """The phases defer their checks (no `_check_finite` inside the step) and pack every statistic into one tensor."""
    t = Trainer(presets.get("ring8-bre").replace(**GRAPH))
    t.step()
    t._begin_half()
    keys, checks, packed = t.graph_step.body()
    assert checks == ["loss/d", "loss/g"] and packed.dtype == torch.float64
    assert packed.shape == (len(keys) + 2,) and "reg/bre/me" in keys and "reg/bre/weighted" in keys


def test_image_trainer_graph_ready_step_matches_plain_and_bre():
    for overrides in ({}, {"reg.bre.weight": 1.0}):
        cfg = ImageConfig().replace(**IMAGE_TINY, **overrides)          # the image default: a linear lr schedule
        eager, ready = ImageTrainer(cfg), ImageTrainer(cfg.replace(**GRAPH))
        for _ in range(4):
            _close(eager.step(), ready.step())


def test_a_divergence_rolls_the_whole_iteration_back(tiny_cfg):
    cfg = tiny_cfg.replace(**GRAPH, **{"optim.lr_d": 1e6, "optim.lr_g": 1e6})
    t = Trainer(cfg)
    t.step()
    before = _weights(t)
    rngs = t.rngs.state_dict()
    with pytest.raises(TrainingDiverged, match=r"^loss/d became .* at step 2; the weights are those of step 1$"):
        t.step()
    after = _weights(t)
    assert t.iteration == 1 and len(t.history) == 1
    assert all(torch.equal(before[n][k], after[n][k]) for n in before for k in before[n])    # G too: it had moved
    assert all(torch.equal(rngs[k], v) for k, v in t.rngs.state_dict().items())
    eager = Trainer(tiny_cfg.replace(**{"optim.lr_d": 1e6, "optim.lr_g": 1e6}))
    eager.step()
    with pytest.raises(TrainingDiverged) as e:
        eager.step()
    assert "loss/d became" in str(e.value)


def test_checkpoint_resume_continues_the_same_numbers(tiny_cfg, whole_and_resumed):
    whole, resumed = whole_and_resumed(tiny_cfg.replace(**GRAPH, **{"reg.bre.weight": 1.0,
                                                                   "optim.lr_schedule": "linear"}), 8)
    assert all(torch.is_tensor(g["lr"]) for o in resumed.optims.values() for g in o.param_groups)
    for expected in whole.history[4:]:
        _close(expected, resumed.step())


def test_halves_and_captures_that_cannot_be_are_refused(tiny_cfg):
    t = Trainer(tiny_cfg.replace(**GRAPH))
    with pytest.raises(ValueError, match="optim.cuda_graph runs each iteration as one captured step"):
        t.half_step("d")
    with pytest.raises(ValueError, match="captures on a CUDA device"):
        GraphStep(t, capture=True)


@pytest.mark.parametrize("overrides, field", [
    ({"reg.historical_averaging": 0.1}, "reg.historical_averaging"),
    ({"reg.unrolled_steps": 2}, "reg.unrolled_steps"),
    ({"reg.mdgan": True}, "reg.mdgan"),
])
def test_validate_refuses_what_a_graph_cannot_replay(tiny_cfg, overrides, field):
    with pytest.raises(ValueError, match=rf"optim.cuda_graph replays one fixed step: {field}"):
        tiny_cfg.replace(**GRAPH, **overrides).validate()
    tiny_cfg.replace(**overrides).validate()                    # the technique alone is fine


def test_seed_batches_and_the_image_k_plus_one_classifier_are_refused(tiny_cfg):
    with pytest.raises(ValueError, match=r"optim.cuda_graph"):
        SeedBatch(tiny_cfg.replace(**GRAPH), [0, 1])
    with pytest.raises(ValueError, match=r"optim.cuda_graph replays one fixed step: reg.semi_supervised"):
        ImageConfig().replace(**IMAGE_TINY, **GRAPH, **{"data.name": "digits", "reg.semi_supervised": True}).validate()


def test_train_with_the_option_writes_the_same_stats_on_the_cpu(tmp_path):
    """The command line end to end: on the CPU a run with optim.cuda_graph writes the ordinary run's stats.jsonl,
    byte for byte (same CPU streams, same Adam updates: a float64 lr tensor read on the host)."""
    lines = {}
    for name, extra in (("plain", []), ("graph", ["--set", "optim.cuda_graph=true"])):
        out = tmp_path / name
        subprocess.run([sys.executable, "-m", "toyviz", "train", "--preset", "bre-toy-bre", "--iters", "25",
                        "--out", str(out), *extra], check=True, capture_output=True)
        lines[name] = (out / "stats.jsonl").read_text().splitlines()
        assert RunFolder(out).config().optim.cuda_graph is bool(extra)
    assert len(lines["plain"]) == 25 and lines["graph"] == lines["plain"]          # bit for bit


def test_training_rows_on_the_cpu_report_the_graph_ready_step():
    rows = training_rows("cpu", True, steps=2, rounds=1, warmup=0, presets_=("bre-toy",))
    assert [r["variant"] for r in rows] == ["bare eager loop", "trainer, eager", "trainer, graph-ready eager"]
    assert rows[-1]["max_abs_diff_20"] == pytest.approx(0, abs=1e-6) and rows[-1]["error"] is None
    assert all(r["steps_per_s"] > 0 for r in rows)


def test_bench_commands_take_device_and_cuda_graph(capsys):
    from toyviz.commands.cli import main as toyviz_main
    from toyviz.commands.image import main as image_main
    assert toyviz_main(["bench", "train", "--device", "cpu", "--cuda-graph", "--quick", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    for preset in ("ring8", "bre-toy"):
        assert re.search(rf"{preset}\s+trainer, graph-ready eager\s+\d+\.\d\s+\d+\.\d\d\s+\d+\.\d\d\s+0\n", out)
    assert image_main(["bench", "--device", "cpu", "--cuda-graph", "--size", "16", "--width", "4", "--batch", "8",
                       "--steps", "1"]) == 0
    out = capsys.readouterr().out
    for row in ("trainer, plain, graph-ready eager", "trainer, BRE (fake + interp), graph-ready eager"):
        assert re.search(re.escape(row) + r"\s+\d+\.\d\d\s+\d+\.\d\d\s+0\n", out), row


def test_statistics_read_with_one_copy_are_the_same_floats():
    """On a GPU the phases' statistics are stacked and read with one copy (`read_floats`): the same floats."""
    from toyviz.engine.phases import read_floats
    t = Trainer(presets.get("ring8-bre"))
    t.step_d()
    stats = dict(t._stats, extra=2.5)
    assert len(stats) > 5 and read_floats(stats, packed=True) == read_floats(stats, packed=False)


def test_streams_saved_on_another_device_are_refused_with_the_reason():
    from toyviz.engine.random_streams import RandomStreams
    cuda_like = {"data": torch.zeros(16, dtype=torch.uint8)}           # the size of a CUDA generator's state
    with pytest.raises(ValueError, match="random stream 'data': the saved state is not one of a cpu generator"):
        RandomStreams(0).load_state_dict(cuda_like)
