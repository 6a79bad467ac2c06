"""toyviz.image.distributed: `torchrun --nproc_per_node 2` (gloo, CPU) on a tiny config agrees with one process at
the same global batch (per-sample norms: virtual batch norm in G, layer norm in D; BRE gathers the global batch;
batch norm and feature matching take their batch statistics over each rank's own slice); rank 0 alone writes;
metrics gathered."""
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import torch

from toyviz.commands.image import main
from toyviz.image.data import load_digits
from toyviz.image.distributed import DistContext

ROOT = Path(__file__).resolve().parents[1]


def test_shard_and_single_process_identity():
    x = torch.arange(12).view(6, 2)
    assert torch.equal(DistContext(1, 3).shard(x), x[2:4])
    one = DistContext()
    assert one.shard(x) is x and one.gather(x) is x and one.wrap(torch.nn.Linear(2, 2)).__class__ is torch.nn.Linear
    assert one.mean_stats({"a": 1.0}, "cpu") == {"a": 1.0}


def test_two_processes_match_one(tmp_path):
    folder = tmp_path / "digits"
    folder.mkdir()
    d = load_digits(16)
    for i in range(40):                                              # real digits as a folder of PNGs
        iio.imwrite(folder / f"{i}.png", d.train[i, 0].numpy())
    args = ["train", "--dataset", "folder", "--set", f"data.path={folder}", "--size", "16", "--iters", "3",
            "--set", "nets.width=4", "--set", "nets.latent_dim=8", "--set", "optim.batch_size=8",
            "--set", "nets.g_norm=vbn", "--set", "nets.d_norm=layer", "--set", "reg.real_target=0.9",
            "--set", "reg.bre.weight=1.0",
            "--set", "eval.metrics_every=3", "--set", "eval.samples=60", "--set", "eval.missing_mass_steps=5",
            "--quiet"]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "toyviz.image"] + args + ["--out", str(tmp_path / "two")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[:3000] + "\n...\n" + r.stderr[-1500:]      # the root cause comes first
    assert r.stdout.count("folder: step 3") == 1                      # rank 0 alone reports (and writes)
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    for net in ("G", "D"):
        for k, v in a["nets"][net].items():
            torch.testing.assert_close(b["nets"][net][k], v, atol=1e-5, rtol=1e-4)
    for sa, sb in zip(a["history"], b["history"]):
        assert sa.keys() == sb.keys()
        for k in ("loss/d", "loss/g", "reg/bre/interp/ac", "reg/bre/fake/me"):
            assert abs(sa[k] - sb[k]) < 1e-4 * max(1.0, abs(sa[k])), k
    assert "eval/missing_mass" in b["history"][-1]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
