import pytest
import torch

torch.set_num_threads(1)     # small nets on a 2-core machine: one thread is fastest and keeps tests independent


@pytest.fixture
def tiny_cfg():
    """A small ring8 config that trains a step in milliseconds."""
    import toyviz
    return toyviz.presets.get("ring8").replace(**{
        "nets.g.width": 16, "nets.d.width": 16, "nets.e.width": 16, "optim.batch_size": 32,
        "viz.eval_samples": 200, "viz.metrics_every": 5, "viz.snapshot_every": 2, "optim.iters": 20})


@pytest.fixture
def whole_and_resumed(tmp_path):
    """`make(cfg, steps)` -> (a Trainer run `steps` steps, a Trainer run steps // 2, saved and loaded back): what
    the checkpoint tests compare, the resumed run's next steps against the whole run's."""
    from toyviz.engine.trainer import Trainer

    def make(cfg, steps: int):
        whole = Trainer(cfg)
        whole.run(steps)
        half = Trainer(cfg)
        half.run(steps // 2)
        half.save(tmp_path / "ck.pt")
        return whole, Trainer.load(tmp_path / "ck.pt")
    return make
