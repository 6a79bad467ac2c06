"""python -m toyviz.image (cli.py, run.py): a run folder with config, stats, checkpoint and sample grids; exact
resume from the folder; one line and exit 2 on bad input, with nothing written."""
import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from toyviz.commands.image import main
from toyviz.image.run import ImageRunFolder, grid_png


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(12):
        iio.imwrite(folder / f"{i}.png", rng.integers(0, 256, (16, 16, 3)).astype(np.uint8))
    return folder


def _args(folder, out, *extra):
    return ["train", "--dataset", "folder", "--set", f"data.path={folder}", "--size", "16", "--set", "nets.width=4",
            "--set", "nets.latent_dim=8", "--set", "optim.batch_size=8", "--set", "eval.metrics_every=2", "--set",
            "eval.grid=6", "--set", "eval.samples=40", "--set", "eval.missing_mass_steps=5", "--quiet",
            "--out", str(out), *extra]


def test_train_writes_the_run_folder(tmp_path, image_folder, capsys):
    out = tmp_path / "run"
    assert main(_args(image_folder, out, "--iters", "4")) == 0
    assert "folder: step 4: missing_mass" in capsys.readouterr().out
    run = ImageRunFolder(out)
    assert [s for s, _ in run.samples()] == [0, 2, 4]
    grid = iio.imread(out / "samples_000004.png")
    assert grid.shape == (2 * 18 + 2, 3 * 18 + 2, 3)                  # 6 images: 2 rows of 3, 2-pixel gaps
    stats = run.stats()
    assert [s["step"] for s in stats] == [1, 2, 3, 4]
    assert "eval/missing_mass" in stats[1] and "eval/missing_mass" not in stats[0]
    assert run.config().optim.iters == 4 and run.config().data.path == str(image_folder)
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["iteration"] == 4 and set(ck["nets"]) == {"G", "D"}
    assert not list(out.glob(".tmp-*"))


def test_resume_continues_exactly(tmp_path, image_folder):
    const = ["--set", "optim.lr_schedule=constant"]
    assert main(_args(image_folder, tmp_path / "straight", "--iters", "4", *const)) == 0
    assert main(_args(image_folder, tmp_path / "split", "--iters", "2", *const)) == 0
    assert main(["train", "--resume", "--iters", "4", "--quiet", "--out", str(tmp_path / "split")]) == 0
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    for k, v in a["nets"]["G"].items():
        assert torch.equal(v, b["nets"]["G"][k])
    assert [s["loss/d"] for s in a["history"]] == [s["loss/d"] for s in b["history"]]


def test_grid_png_is_greyscale_for_one_channel(tmp_path):
    grid_png(torch.zeros(4, 1, 5, 5), tmp_path / "g.png", pad=1)
    g = iio.imread(tmp_path / "g.png")
    assert g.shape == (13, 13) and g[1, 1] == 128 and g[0, 0] == 255


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "imagenet", "--out", "X"], "invalid choice: 'imagenet'"),
    (["train", "--dataset", "digits", "--set", "nets.bogus=1", "--out", "X"], "unknown config key nets.bogus"),
    (["train", "--dataset", "digits", "--size", "48", "--out", "X"], "data.image_size must be one of 16, 28, 32, 64"),
    (["train", "--dataset", "mnist", "--set", "data.path=/no/such/dir", "--out", "X"], "mnist: data.path /no/such"),
    (["train", "--out", "X"], "train needs --dataset NAME"),
    (["train", "--resume", "--out", "X"], "--resume: X holds no image run"),
    (["bench", "--steps", "x"], "invalid int value"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "X").exists()


def test_refuses_to_overwrite_a_run(tmp_path, image_folder, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({}))
    assert main(_args(image_folder, out, "--iters", "1")) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
