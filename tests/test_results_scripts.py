"""docs/results-full.sh end to end at a tiny length: its sweeps train seed batches, and its report lands in the
page's block for the section, with the paired verdict."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_results_full_converged_section_fills_its_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# page\n\nprose above\n\n<!-- report:converged-ring8 -->\nold\n<!-- /report:converged-ring8 -->\n"
                    "\nprose below\n")
    env = dict(os.environ, PY=sys.executable, PAGE=str(page), RUNS=str(tmp_path / "runs"), WORKERS="2",
               LENGTH="40", ROWS="ring8 ring8-bre")
    done = subprocess.run(["bash", str(ROOT / "docs" / "results-full.sh"), "converged-ring8"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "section converged-ring8 took" in done.stderr
    text = page.read_text()
    assert text.startswith("# page\n\nprose above\n") and text.rstrip().endswith("prose below")
    block = text.split("<!-- report:converged-ring8 -->")[1].split("<!-- /report:converged-ring8 -->")[0]
    assert "old" not in block.splitlines()
    rows = [line.split("|")[1].strip() for line in block.splitlines() if line.startswith("| ring8")]
    assert rows == ["ring8", "ring8-bre"]
    assert "modes (step 8)" in block and "modes (step 20)" in block           # LENGTH / 5 and LENGTH / 2
    assert "**ring8-bre** vs **ring8**" in block                               # the paired verdict
    for seed in range(10):                                                     # seeds 0–9, each its own run folder
        assert (tmp_path / "runs" / "converged-ring8" / "ring8-bre" / f"seed{seed}" / "stats.jsonl").is_file()


def test_results_full_rescue_section_trains_the_authors_settings(tmp_path):
    """The rescue rows carry the settings they are named for (Adam 1e-4; λ = 0.1), on the tuning seeds, on both
    mixtures, and each mixture's report fills its block."""
    import json
    env = dict(os.environ, PY=sys.executable, PAGE=str(tmp_path / "page.md"), RUNS=str(tmp_path / "runs"),
               WORKERS="2", LENGTH="10")
    done = subprocess.run(["bash", str(ROOT / "docs" / "results-full.sh"), "rescue"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "page.md").read_text()
    for data in ("ring8", "grid25"):
        block = text.split(f"<!-- report:rescue-{data} -->")[1].split(f"<!-- /report:rescue-{data} -->")[0]
        rows = sorted(line.split("|")[1].strip() for line in block.splitlines() if line.startswith(f"| {data}"))
        assert rows == [f"{data}-unrolled-lr1e-4", f"{data}-wgan-gp-gp0.1", f"{data}-wgan-gp-gp0.1-lr1e-4",
                        f"{data}-wgan-gp-lr1e-4"]
        for row in rows:
            runs = tmp_path / "runs" / "rescue" / data / row
            assert sorted(p.name for p in runs.iterdir()) == ["seed100", "seed101", "seed102", "seed103"]
            cfg = json.loads((runs / "seed100" / "config.json").read_text())
            lr = 1e-4 if "lr1e-4" in row else 1e-3
            assert cfg["optim"]["lr_g"] == cfg["optim"]["lr_d"] == lr
            assert cfg["reg"]["gp_weight"] == (0.1 if "gp0.1" in row else 10.0 if "wgan" in row else 0.0)
            assert cfg["reg"]["unrolled_steps"] == (5 if "unrolled" in row else 0)
            assert cfg["data"]["kind"] == ("grid" if data == "grid25" else "ring")


def test_results_scripts_refuse_an_unknown_section(tmp_path):
    """A misspelt section stops before anything runs, naming the sections there are (exit 2)."""
    env = dict(os.environ, PY="false", PAGE=str(tmp_path / "p.md"), RUNS=str(tmp_path))
    for script, sections in (("results.sh", "bre-toy tune protocol-ring8"), ("results-full.sh", "plateau")):
        done = subprocess.run(["bash", str(ROOT / "docs" / script), "nosuch"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert f"{script}: unknown section 'nosuch'" in done.stderr and sections in done.stderr
        assert not (tmp_path / "p.md").exists()
