"""toyviz.image.bench: the benchmark runs on tiny nets and prints its rows (speeds are printed, never asserted)."""
import re

import torch

from toyviz.commands.image import main
from toyviz.experiments.image_bench import bare_dcgan_step, bench_config
from toyviz.image.trainer import ImageTrainer


def test_bench_prints_bare_plain_and_bre_rows(capsys):
    assert main(["bench", "--size", "16", "--width", "4", "--batch", "8", "--steps", "1"]) == 0
    out, err = capsys.readouterr()
    assert "image bench: about" in err and "slow" in err          # the expected time, before it starts
    for row in ("bare PyTorch DCGAN loop", "trainer, plain", "trainer, BRE (fake + interp)"):
        assert re.search(re.escape(row) + r"\s+\d+\.\d\d\s+\d+\.\d\d", out), row
    assert "goal: trainer ≥ 0.9× bare" in out


def test_bare_step_trains_the_same_nets():
    t = ImageTrainer(bench_config(16, 4, 8))
    before = t.G.fc.weight.clone()
    gens = (torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    opt_g = torch.optim.Adam(t.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(t.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bare_dcgan_step(t.G, t.D, t.data, 8, t.cfg.nets.latent_dim, gens, opt_g, opt_d)
    assert not torch.equal(before, t.G.fc.weight)
    assert all(p.requires_grad for p in t.D.parameters())
