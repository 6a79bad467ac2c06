"""Exact-partition drawing: boundary segments drawn once, raster-matching colours, the exact mosaic, vector files
written atomically, and the `partition` command."""
import numpy as np
import pytest
import torch
from matplotlib.colors import rgb_to_hsv
from matplotlib.figure import Figure
from matplotlib.path import Path

from toyviz.commands.cli import main, train_run
from toyviz.draw.polygon_figure import (
    boundary_segments,
    draw_exact_boundaries,
    exact_mosaic,
    mosaic_colors,
    partition_figure,
    region_colors,
    save_partition_figure,
)
from toyviz.engine import presets
from toyviz.engine.config import MLPConfig
from toyviz.engine.nets import MLP
from toyviz.geometry.polygons import exact_partition
from toyviz.geometry.raster import rasterize

BOX = (-1.0, 1.0, -1.0, 1.0)


def lines_net(lines, depth=1):
    net = MLP(2, 1, MLPConfig(len(lines), depth, "leaky_relu"))
    with torch.no_grad():
        L = torch.tensor(lines, dtype=torch.float32)
        net.hidden[0].weight.copy_(L[:, :2])
        net.hidden[0].bias.copy_(L[:, 2])
    return net


def seg_length(segs):
    return np.hypot(*(segs[:, 1] - segs[:, 0]).T).sum()


def test_boundaries_are_the_lines_inside_the_box_each_drawn_once():
    # x = 0, y = 0 and x + y = 0.5: lengths 2, 2 and 1.5·√2 inside the box; the frame is not a boundary
    part = exact_partition(lines_net([(1, 0, 0), (0, 1, 0), (1, 1, -0.5)]), BOX)
    segs = boundary_segments(part[0], BOX)
    assert seg_length(segs) == pytest.approx(4 + 1.5 * np.sqrt(2), rel=1e-12)
    assert (np.abs(segs) <= 1 + 1e-12).all()
    ax = Figure().subplots()
    lines = draw_exact_boundaries(ax, part, 0, colors="r", linewidths=2)
    assert lines in ax.collections
    (path,) = lines.get_paths()                                              # one compound path
    np.testing.assert_array_equal(path.vertices, segs.reshape(-1, 2))
    np.testing.assert_array_equal(path.codes[:4], [Path.MOVETO, Path.LINETO] * 2)
    np.testing.assert_allclose(lines.get_linewidths(), [2])
    np.testing.assert_allclose(lines.get_edgecolors(), [[1, 0, 0, 0.8]])


def test_region_colours_are_the_rasters_cumulative_colours():
    torch.manual_seed(3)
    net = MLP(2, 1, MLPConfig(6, 3, "leaky_relu"))
    extent = (-2.0, 2.0, -2.0, 2.0)
    raster = rasterize(net, extent, 32, grad_resolution=0)
    part = exact_partition(net, extent)
    for l in range(3):
        joint = np.concatenate([raster.patterns[k][raster.ids[k].reshape(-1)] for k in range(l + 1)], 1)
        idx = part[l].lookup(joint)
        assert (idx >= 0).all()
        np.testing.assert_array_equal(region_colors(part[l])[idx], raster.cumulative_colors[l].reshape(-1, 3))


def test_mosaic_colours_encode_direction_as_hue_and_magnitude_as_brightness():
    rgb = mosaic_colors(np.array([[1.0, 0.0], [0.0, 2.0], [-0.5, 0.0], [0.0, 0.0]]))
    hsv = rgb_to_hsv(rgb)
    np.testing.assert_allclose(hsv[:3, 0], [0.0, 0.25, 0.5], atol=1e-9)
    assert hsv[3, 2] == pytest.approx(0.2) and hsv[1, 2] > hsv[0, 2] > hsv[2, 2] > hsv[3, 2]


def test_exact_mosaic_fills_the_last_layers_regions_by_their_gradient():
    torch.manual_seed(1)
    net = MLP(2, 1, MLPConfig(8, 2, "relu"))
    part = exact_partition(net, BOX)
    ax = Figure().subplots()
    polys = exact_mosaic(ax, part)
    assert len(polys.get_paths()) == len(part[1])
    np.testing.assert_allclose(polys.get_facecolors()[:, :3], mosaic_colors(part[1].grads))
    assert ax.get_xlim() == (-1.0, 1.0)
    with pytest.raises(ValueError, match="last hidden layer"):
        exact_mosaic(ax, exact_partition(net, BOX, layers=[0]))


@pytest.mark.parametrize("ext, magic", [(".svg", b"<?xml"), (".pdf", b"%PDF"), (".png", b"\x89PNG")])
def test_save_partition_figure_writes_the_format_of_the_extension(tmp_path, ext, magic):
    torch.manual_seed(0)
    net = MLP(2, 1, MLPConfig(5, 2, "leaky_relu"))
    path = tmp_path / f"fig{ext}"
    part = save_partition_figure(net, BOX, path, layers=[0, 1])
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]                  # no temporary file left
    if ext == ".svg":
        text = path.read_text()
        assert "<image" not in text and text.count("<path") > len(part[1])      # vector: one path per polygon


def test_many_regions_embed_their_fills_as_an_image_but_keep_vector_boundaries(tmp_path, monkeypatch):
    import toyviz.draw.polygon_figure as pf
    monkeypatch.setattr(pf, "VECTOR_FILLS", 10)
    torch.manual_seed(0)
    path = tmp_path / "fig.svg"
    # 40 lines: hundreds of regions, so the figure's own paths (axes, glyphs, the ∇ₓD wheel) stay fewer
    part = save_partition_figure(MLP(2, 1, MLPConfig(40, 1, "relu")), (-2, 2, -2, 2), path)
    assert len(part[0]) > 10
    text = path.read_text()
    assert text.count("<image") == 2 and text.count("<path") < len(part[0])   # regions + mosaic panels


def test_save_partition_figure_refuses_an_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match="unknown extension"):
        save_partition_figure(lines_net([(1, 0, 0)]), BOX, tmp_path / "fig.jpg")
    assert list(tmp_path.iterdir()) == []


# ---- python -m toyviz partition ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cfg = presets.get("bre-toy").replace(**{"optim.iters": 6, "viz.snapshot_every": 2, "viz.eval_samples": 100,
                                            "viz.metrics_every": 6})
    out = tmp_path_factory.mktemp("runs") / "toy"
    train_run(cfg, out, quiet=True)
    return out


def test_partition_command_writes_the_figure(run_dir, tmp_path, capsys):
    out = tmp_path / "p.svg"
    assert main(["partition", str(run_dir), "--out", str(out), "--layers", "2", "4", "--step", "3"]) == 0
    text = capsys.readouterr().out
    assert "step 2" in text or "step 4" in text
    assert "step 3 is not stored; drawing the nearest stored snapshot" in text
    assert "layers 1–2: " in text and "layers 1–4: " in text and "layer 1:" not in text
    assert out.read_text().startswith("<?xml")


@pytest.mark.parametrize("extra, match", [
    (["--layers", "5"], "hidden layers are 1..4"),
    (["--layers", "0"], "hidden layers are 1..4"),
])
def test_partition_command_bad_layers(run_dir, tmp_path, capsys, extra, match):
    out = tmp_path / "p.png"
    assert main(["partition", str(run_dir), "--out", str(out), *extra]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_partition_command_bad_paths(run_dir, tmp_path, capsys):
    assert main(["partition", str(run_dir), "--out", str(tmp_path / "p.txt")]) == 2
    assert "unknown extension" in capsys.readouterr().err
    assert main(["partition", str(tmp_path / "nothing"), "--out", str(tmp_path / "p.png")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_partition_figure_titles_keys_and_truetype_pdf(tmp_path):
    torch.manual_seed(0)
    net = MLP(2, 1, MLPConfig(5, 2, "leaky_relu"))
    part = exact_partition(net, BOX)
    fig = partition_figure(part)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == [f"layer 1: {len(part[0])} regions", f"layers 1–2: {len(part[1])} regions"]
    assert titles[2] == "∇ₓD per region of layers 1–2 (exact)" and titles[3] == "∇ₓD"    # the wheel, its key
    wheel = fig.axes[3].collections[0]
    assert len(wheel.get_paths()) == 24 * 4
    path = tmp_path / "p.pdf"
    save_partition_figure(net, BOX, path)
    pdf = path.read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf                  # TrueType (Type 42), not Type 3
    light = partition_figure(part, regions="outline").axes[0].collections[0].get_facecolors()[:, :3]
    assert light.min() >= 0.8 - 1e-9                                      # light fills: boundaries carry it
    with pytest.raises(ValueError, match="choose from: hashed, outline"):
        partition_figure(part, regions="dots")


def test_partition_command_outline_option(run_dir, tmp_path, capsys):
    out = tmp_path / "p.png"
    assert main(["partition", str(run_dir), "--out", str(out), "--regions", "outline", "--layers", "1"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"-> {out}") and out.exists()
