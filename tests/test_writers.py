"""export.py and the export / figure / compare commands: decode what was written; errors leave nothing behind."""
import imageio.v2 as imageio
import numpy as np
import pytest

import toyviz
import toyviz.engine.run_folder
from toyviz.commands.cli import main, train_run
from toyviz.draw.writers import export_video, side_by_side, write_figure, write_video

TINY = ["--set", "nets.g.width=16", "--set", "nets.d.width=16", "--set", "optim.batch_size=32",
        "--set", "viz.eval_samples=200", "--set", "viz.metrics_every=10", "--set", "viz.snapshot_every=4"]


def tiny(iters=16):
    return toyviz.presets.get("ring8").replace(**{
        "nets.g.width": 16, "nets.d.width": 16, "optim.batch_size": 32, "viz.eval_samples": 200,
        "viz.metrics_every": 10, "viz.snapshot_every": 4, "optim.iters": iters})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    train_run(tiny(), out, quiet=True)
    return out


def decode(path):
    with imageio.get_reader(path) as r:
        return [np.asarray(f)[..., :3] for f in r]


def top_level_boxes(mp4: bytes) -> list[str]:
    """The MP4's top-level box types in file order (faststart puts 'moov' before 'mdat')."""
    out, i = [], 0
    while i + 8 <= len(mp4):
        size, kind = int.from_bytes(mp4[i:i + 4], "big"), mp4[i + 4:i + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(mp4[i + 8:i + 16], "big")
        out.append(kind)
        if size < 8:
            break
        i += size
    return out


def files(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("ext", ["mp4", "gif"])
def test_video_of_a_run_decodes(run_dir, tmp_path, ext):
    done = []
    n = export_video(run_dir, tmp_path / f"v.{ext}", size=(192, 128), fps=5,
                     progress_fn=lambda i, total: done.append((i, total)))
    frames = decode(tmp_path / f"v.{ext}")
    assert n == len(frames) == 5                       # snapshots at steps 0, 4, 8, 12, 16
    assert done[-1] == (5, 5)
    assert all(f.shape == (128, 192, 3) for f in frames)
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 1.0   # training moved things
    assert files(tmp_path) == [f"v.{ext}"]            # no temporary file left


def test_a_snapshot_taken_during_export_is_not_counted(tmp_path, monkeypatch):
    import toyviz.draw.writers as export
    t = toyviz.Trainer(tiny())
    t.run(8)
    n0, done, write = len(t.snapshots), [], export.write_video

    def write_while_the_page_adds_a_snapshot(frames, *a, **kw):      # another thread, between count and frames
        t.snapshots.append({"iteration": 99, "nets": t.state_of_nets()})
        return write(frames, *a, **kw)
    monkeypatch.setattr(export, "write_video", write_while_the_page_adds_a_snapshot)
    n = export_video(t, tmp_path / "v.mp4", size=(192, 128), fps=5, progress_fn=lambda i, k: done.append((i, k)))
    assert n == n0 == len(decode(tmp_path / "v.mp4")) and done[-1] == (n0, n0)


def test_a_video_of_chosen_snapshots(run_dir, tmp_path):
    assert export_video(run_dir, tmp_path / "v.gif", size=(128, 128), indices=[0, 2]) == 2
    assert len(decode(tmp_path / "v.gif")) == 2


def test_mp4_is_h264_yuv420p_faststart(run_dir, tmp_path):
    path = tmp_path / "v.mp4"
    export_video(run_dir, path, size=(128, 128), panels=["data", "curves"])
    with imageio.get_reader(path) as r:
        meta = r.get_meta_data()
    assert meta["codec"] == "h264" and meta["size"] == (128, 128) and meta["fps"] == 10
    boxes = top_level_boxes(path.read_bytes())
    assert boxes.index("moov") < boxes.index("mdat")


def test_list_of_frames_round_trip_gif(tmp_path):
    frames = [np.full((64, 80, 3), v, np.uint8) for v in (0, 128, 255)]
    assert export_video(frames, tmp_path / "f.gif", fps=4) == 3
    back = decode(tmp_path / "f.gif")
    assert [int(f.mean()) for f in back] == [0, 128, 255] and back[0].shape == (64, 80, 3)


@pytest.mark.parametrize("name,kwargs,match", [
    ("v.avi", {}, "unknown extension '.avi'"),
    ("missing/v.mp4", {}, "does not exist"),
    ("v.mp4", {"size": (100, 96)}, "multiples of 16"),
    ("v.gif", {"size": (32, 32)}, "too small"),
    ("v.mp4", {"panels": ["data", "nope"]}, "unknown panel 'nope'"),
    ("v.gif", {"fps": 0}, "fps"),
    ("v.gif", {"indices": [0, 999]}, "snapshot indices"),
    ("v.gif", {"indices": []}, "snapshot indices"),
])
def test_bad_video_requests_write_nothing(run_dir, tmp_path, name, kwargs, match):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match=match):
        export_video(run_dir, out / name, **kwargs)
    assert files(out) == []


def test_a_failure_mid_video_leaves_no_file(tmp_path):
    def frames():
        yield np.zeros((64, 64, 3), np.uint8)
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        write_video(frames(), tmp_path / "v.mp4")
    with pytest.raises(ValueError, match="frame 1"):
        write_video([np.zeros((64, 64, 3), np.uint8), np.zeros((64, 80, 3), np.uint8)], tmp_path / "v.gif")
    assert files(tmp_path) == []


def test_write_figure_reports_the_snapshots_used(run_dir, tmp_path):
    used = write_figure([("A", run_dir)], tmp_path / "f.svg", steps=[0, 7, 100], panels=["data", "prob"])
    assert used == [("A", 0, 0), ("A", 7, 8), ("A", 100, 16)]
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")


def test_cli_export(run_dir, tmp_path, capsys):
    out = tmp_path / "v.mp4"
    assert main(["export", str(run_dir), "--out", str(out), "--size", "160x96", "--fps", "4",
                 "--panels", "data,regions:2"]) == 0
    assert "5 frames" in capsys.readouterr().out
    frames = decode(out)
    assert len(frames) == 5 and frames[0].shape == (96, 160, 3)


def test_cli_figure_pdf_has_a_panel_per_step_run_and_column(run_dir, tmp_path, capsys):
    out = tmp_path / "fig.pdf"
    assert main(["figure", str(run_dir), "--steps", "0,6,16", "--out", str(out), "--compare", str(run_dir),
                 "--labels", "baseline,BRE", "--resolution", "48"]) == 0
    printed = capsys.readouterr().out
    assert "baseline: step 6 -> nearest stored snapshot, step 4" in printed
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF")
    # default columns: data, h1..h3 (3 hidden layers), prob; every column but data is an image
    assert pdf.count(b"/Subtype /Image") == 2 * 3 * (3 + 1)


def test_cli_compare_side_by_side(tmp_path, capsys):
    out = tmp_path / "ab.gif"
    assert main(["compare", "--preset", "ring8", *TINY, "--iters", "8", "--a", "reg.bre.weight=0",
                 "--b", "reg.bre.weight=1", "--out", str(out), "--size", "256x128",
                 "--runs", str(tmp_path / "runs")]) == 0
    frames = decode(out)
    assert len(frames) == 3 and frames[0].shape == (128, 256, 3)       # snapshots 0, 4, 8
    a, b = frames[-1][:, :128].astype(int), frames[-1][:, 128:]
    assert np.abs(a - b).mean() > 1.0               # BRE changed D
    assert toyviz.engine.run_folder.RunFolder(tmp_path / "runs" / "b").config().reg.bre.weight == 1
    err = capsys.readouterr().err
    assert "A: ring8" in err and "B: ring8" in err                    # the two training bars say which is which
    # the curves line up: A (BRE off) shows an empty BRE group where B has one, so their axes sit alike
    runs = [toyviz.engine.run_folder.RunFolder(tmp_path / "runs" / n).trainer() for n in "ab"]
    frame = next(iter(side_by_side(*runs, ("A", "B"), panels="curves", size=(512, 384))))
    halves = frame[:, :256], frame[:, 256:]
    spines = [set(np.nonzero(((h < 80).all(-1)).sum(1) > 150)[0]) for h in halves]   # rows of axes frames
    assert spines[0] and spines[0] == spines[1]


@pytest.fixture(scope="module")
def odd_runs(run_dir, tmp_path_factory):
    """An empty folder, and a run whose checkpoint holds no snapshots."""
    import shutil

    import torch
    root = tmp_path_factory.mktemp("odd")
    (root / "empty").mkdir()
    shutil.copytree(run_dir, root / "nosnap")
    ck = torch.load(root / "nosnap" / "checkpoint.pt", weights_only=True)
    ck["snapshots"] = []
    torch.save(ck, root / "nosnap" / "checkpoint.pt")
    return root


@pytest.mark.parametrize("argv,match", [
    (["export", "RUN", "--out", "v.webm"], "unknown extension '.webm'"),
    (["export", "RUN", "--out", "v.webm"], ".mp4, .gif"),                       # the allowed values named
    (["figure", "RUN", "--steps", "0", "--out", "f.mp4"], "(choose from: .png, .pdf, .svg)"),
    (["compare", "--iters", "2", "--out", "ab.png"], "(choose from: .mp4, .gif)"),
    (["partition", "RUN", "--out", "p.gif"], "(choose from: .png, .pdf, .svg)"),
    (["export", "RUN", "--out", "v.mp4", "--panels", "data,nope"], "unknown panel 'nope' (choose from: data,"),
    (["compare", "--iters", "2", "--out", "ab.mp4", "--panels", "nope"], "unknown panel 'nope'"),
    (["export", "ODD/empty", "--out", "v.mp4"], "is an empty folder, not a run folder"),
    (["figure", "ODD/empty", "--steps", "0", "--out", "f.png"], "config.json, stats.jsonl and checkpoint.pt"),
    (["partition", "ODD/empty", "--out", "p.png"], "is not a run folder"),
    (["export", "ODD/nosnap", "--out", "v.gif"], "the run stored no snapshots"),
    (["figure", "ODD/nosnap", "--steps", "0", "--out", "f.png"], "the run stored no snapshots"),
    (["partition", "ODD/nosnap", "--out", "p.png", "--step", "3"], "stored no snapshots"),
    (["export", "RUN", "--out", "v.mp4", "--palette", "rainbow"], "invalid choice: 'rainbow'"),
    (["figure", "RUN", "--steps", "0", "--out", "f.pdf", "--regions", "dots"], "invalid choice: 'dots'"),
    (["figure", "RUN", "--steps", "0", "--out", "f.pdf", "--columns", "2"], "--style paper"),
    (["export", "RUN", "--out", "nowhere/v.mp4"], "does not exist"),
    (["export", "RUN", "--out", "v.mp4", "--size", "big"], "expected WxH"),
    (["export", "RUN", "--out", "v.mp4", "--size", "200x200"], "multiples of 16"),
    (["export", "NOT_A_RUN", "--out", "v.mp4"], "is not a run folder"),
    (["figure", "RUN", "--steps", "a,b", "--out", "f.pdf"], "steps"),
    (["figure", "RUN", "--steps", "0", "--out", "f.jpg"], "unknown extension '.jpg'"),
    (["figure", "RUN", "--steps", "0", "--out", "f.pdf", "--panels", "data,regions:9"], "unknown panel"),
    (["figure", "RUN", "--steps", "0", "--out", "f.pdf", "--exact"], "cumulative region panels (regions, "),
    (["compare", "--a", "reg.nope=1", "--iters", "2", "--out", "ab.mp4"], "unknown config key reg.nope"),
])
def test_cli_errors_one_line_exit_2_nothing_written(run_dir, odd_runs, tmp_path, capsys, monkeypatch, argv,
                                                    match):
    monkeypatch.chdir(tmp_path)
    argv = [str(run_dir) if a == "RUN" else a.replace("ODD", str(odd_runs)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]
    assert files(tmp_path) == []


def test_figure_draws_a_snapshot_once_and_says_so(run_dir, tmp_path, capsys):
    out = tmp_path / "f.pdf"
    assert main(["figure", str(run_dir), "--steps", "4,5,16", "--out", str(out), "--panels", "data,prob",
                 "--resolution", "32"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1] == ("run: step 5 -> nearest stored snapshot, step 4, which the row of step 4 already "
                          "shows: drawn once")
    assert printed[-1] == f"2 rows x 2 panels -> {out}"
    pdf = out.read_bytes()
    assert pdf.count(b"/Subtype /Image") == 2                         # steps 4 and 16: one D(x) image each
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf               # TrueType fonts embedded, not Type 3


def test_figure_exact_outlines_the_cumulative_panel(run_dir, tmp_path):
    svgs = {}
    for exact in (False, True):
        path = tmp_path / f"f{exact}.svg"
        assert main(["figure", str(run_dir), "--steps", "16", "--out", str(path), "--panels", "regions",
                     "--resolution", "32"] + (["--exact"] if exact else [])) == 0
        svgs[exact] = path.read_text()
    assert svgs[True].count("<path") > svgs[False].count("<path")   # the boundaries, drawn as vector paths


def test_paper_figure_is_one_or_two_columns_wide(run_dir, tmp_path):
    from PIL import Image
    for columns, inches in ((1, 3.5), (2, 7.0)):
        path = tmp_path / f"f{columns}.png"
        write_figure([("A", run_dir)], path, steps=[16], panels=["data", "regions", "prob"], resolution=32,
                     columns=columns, palette="cividis", regions="outline")
        with Image.open(path) as im:
            assert im.size[0] == pytest.approx(300 * inches, abs=2)   # 300 dpi
    with pytest.raises(ValueError, match="do not fit"):
        write_figure([("A", run_dir)], tmp_path / "f.png", steps=[16], panels="data,regions:all,prob,mosaic",
                     columns=1)
    with pytest.raises(ValueError, match="palette"):
        write_figure([("A", run_dir)], tmp_path / "f.png", steps=[16], palette="rainbow")


def test_export_with_the_colour_blind_palette_and_outlines(run_dir, tmp_path, capsys):
    out = tmp_path / "v.gif"
    assert main(["export", str(run_dir), "--out", str(out), "--size", "256x256", "--panels", "regions,prob",
                 "--palette", "cividis", "--regions", "outline"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"-> {out}")
    plain = tmp_path / "p.gif"
    assert main(["export", str(run_dir), "--out", str(plain), "--size", "256x256", "--panels", "regions,prob"]) == 0
    a, b = decode(out)[-1], decode(plain)[-1]
    assert np.abs(a.astype(int) - b).mean() > 5.0
