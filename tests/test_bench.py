"""toyviz.experiments.bench: every benchmark runs (--quick) and writes its markdown page atomically; the stage clock
times library functions without the library's help and puts them back (speeds are printed, never asserted)."""
import types

import numpy as np
import pytest
import torch

import toyviz
from toyviz.commands.cli import main
from toyviz.experiments import bench
from toyviz.experiments.bench import BENCHES, run_benches
from toyviz.experiments.bench_tools import Section, StageClock, machine_facts, markdown_page


def test_bench_all_quick_writes_one_page(tmp_path, capsys):
    path = tmp_path / "PERF.md"
    assert main(["bench", "all", "--quick", "--markdown", str(path), "--note", "a busy machine"]) == 0
    out, err = capsys.readouterr()
    page = path.read_text()
    for field in ("| date |", "| CPU |", "| cores |", f"| torch | {torch.__version__} |",
                  f"| numpy | {np.__version__} |", f"| toyviz | {toyviz.__version__} |", "| load average before",
                  "| load average after", "**Note.** a busy machine"):
        assert field in page, field
    assert list(BENCHES) == ["train", "regions", "app", "export", "exact", "choices", "sweep", "device"]
    for name in BENCHES:
        assert f"\n## bench {name}\n" in page and f"bench {name}: about" in err     # expected time up front
    assert page.count("*What the numbers mean.*") == len(BENCHES) == page.count("```text")
    for line in ("goal: trainer ≥ 0.9× bare", "goal: ≥ 5 updates/s at 256²", "goal: draw + encode ≤ rasterize",
                 "toyviz.malloc_tuning"):
        assert line in out and line in page                    # echoed to the terminal and kept for the page
    assert [p.name for p in tmp_path.iterdir()] == ["PERF.md"]


def _fake_benches(monkeypatch, *fns):
    monkeypatch.setattr(bench, "BENCHES", {fn.__name__: fn for fn in fns})
    monkeypatch.setattr(bench, "EXPECTED_SECONDS", {fn.__name__: (1.0, 1.0) for fn in fns})


def test_a_failure_midway_leaves_the_old_page_and_no_temporary_file(tmp_path, monkeypatch, capsys):
    def fine(args):
        """Prints a row."""
        print("a row")

    def broken(args):
        raise RuntimeError("the machine caught fire")
    _fake_benches(monkeypatch, fine, broken)
    path = tmp_path / "PERF.md"
    path.write_text("the last good page\n")
    with pytest.raises(RuntimeError, match="caught fire"):
        run_benches(["fine", "broken"], types.SimpleNamespace(quick=True), markdown=path)
    assert path.read_text() == "the last good page\n"
    assert [p.name for p in tmp_path.iterdir()] == ["PERF.md"]
    assert "a row" in capsys.readouterr().out


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def fine(args):
        print("a row")
    _fake_benches(monkeypatch, fine)

    def no_rename(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr("toyviz.engine.atomic_files.os.replace", no_rename)
    with pytest.raises(OSError, match="disk full"):
        run_benches(["fine"], types.SimpleNamespace(), markdown=tmp_path / "PERF.md")
    assert list(tmp_path.iterdir()) == []


def test_markdown_page_sections():
    sections = [Section("one", "What the\n  numbers mean.", "row 1\nrow 2\n", 3.2), Section("two", "", "x\n", 200)]
    page = markdown_page(sections, [("CPU", "a CPU"), ("cores", "2")], "python -m toyviz bench all", note=None)
    assert page.startswith("# toyviz performance\n") and "`python -m toyviz bench all`" in page
    assert "| CPU | a CPU |\n| cores | 2 |" in page and "Note" not in page
    assert "## bench one\n\n*What the numbers mean.* What the numbers mean.\n\n```text\nrow 1\nrow 2\n```" in page
    assert "(3 s wall time)" in page and "(3 min wall time)" in page


def test_machine_facts_name_the_cpu_and_versions():
    facts = dict(machine_facts())
    assert facts["CPU"] and facts["toyviz"] == toyviz.__version__ and int(facts["cores"].split()[0]) >= 1


@pytest.mark.parametrize("argv,match", [
    (["bench", "nothing"], "unknown benchmark 'nothing'"),
    (["bench", "regions", "--markdown", "no-such-folder/PERF.md"], "does not exist"),
    (["bench", "regions", "--markdown", "PERF.txt"], "expected a .md file"),
    (["bench", "train", "--steps", "0"], "--steps must be ≥ 1"),
    (["bench", "device", "--device", "gpu0"], "--device: device 'gpu0': not a torch device (cpu, cuda, cuda:N, mps)"),
] + ([] if torch.cuda.is_available() else [
    (["bench", "regions", "--device", "cuda"], "--device: device cuda: this torch has no CUDA device"),
]))
def test_bad_options_one_line_exit_2_nothing_run(tmp_path, monkeypatch, capsys, argv, match):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert match in err and len(err.strip().splitlines()) == 1 and out == ""
    assert list(tmp_path.iterdir()) == []


def test_bench_device_names_the_device_and_lists_its_sections(capsys):
    """On the CPU: headed by the CPU's name, the rasterize rows at 256² (--quick), saying the CPU runs fewer sizes;
    every section of SECTIONS runs."""
    from toyviz.experiments import device_bench
    seen = []
    sections = [*device_bench.SECTIONS, lambda args, device: seen.append(device)]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(device_bench, "SECTIONS", sections)
        assert main(["bench", "device", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("device: cpu = ") and "backend numpy" in out and "on the CPU up to 512² only" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("256²")).split()
    assert int(row[1]) > 1000 and all(float(v) > 0 for v in row[2:])     # regions, then three timings
    assert seen == [torch.device("cpu")]


def test_stage_clock_times_calls_and_items_and_restores():
    module = types.SimpleNamespace(work=lambda n: sum(range(n)), items=lambda n: (i for i in range(n)))
    work, items = module.work, module.items
    clock = StageClock()
    with clock.patch(module, "work", lambda f: clock.timed("work", f)), \
            clock.patch(module, "items", lambda f: clock.timed_iter("items", f)):
        assert module.work is not work
        assert module.work(10) == 45 and list(module.items(3)) == [0, 1, 2]
    assert (module.work, module.items) == (work, items) and clock.wall["work"] > 0 and clock.wall["items"] > 0
    with pytest.raises(ValueError), clock.patch(module, "work", lambda f: clock.timed("work", f)):
        raise ValueError
    assert module.work is work


def test_stage_clock_times_methods_of_made_objects():
    class Writer:
        def __init__(self):
            self.written = []

        def append_data(self, x):
            self.written.append(x)
    clock = StageClock()
    w = clock.timed_methods("encode", Writer, ("append_data",))()
    w.append_data(1)
    assert w.written == [1] and clock.cpu["encode"] >= 0 and clock.wall["encode"] > 0


def test_browser_benches_run_only_when_named():
    """`bench browser` and `bench load` need Chromium and serve the page: named, they run; `all` leaves them out."""
    assert list(bench.iter_names("browser")) == ["browser"] and list(bench.iter_names("load")) == ["load"]
    assert not {"browser", "load"} & set(bench.iter_names("all"))
    with pytest.raises(ValueError, match="browser, load, all"):
        list(bench.iter_names("nothing"))
