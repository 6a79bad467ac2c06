"""The README tells the truth: its Python API example runs verbatim, as a newcomer would run it (installed, from
another folder), and its module map lists exactly the modules in the tree."""
import os
import re
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def section(title: str) -> str:
    """The README's text from `## title` to the next `## ` heading."""
    text = README.read_text(encoding="utf-8")
    head = f"\n## {title}\n"
    assert head in text, f"README.md has no '## {title}' section"
    return text.split(head, 1)[1].split("\n## ", 1)[0]


def api_example() -> str:
    block = re.search(r"^```python\n(.*?)^```", section("Python API"), re.S | re.M)
    assert block, "README.md's '## Python API' section has no ```python block"
    return block.group(1)


def test_python_api_example_runs_verbatim_from_another_folder(tmp_path):
    # A fresh folder holding an empty `toyviz/`: such a folder beside the script was once taken for a namespace
    # package that shadowed the installed toyviz. No PYTHONPATH: only the installed package may be found.
    (tmp_path / "toyviz").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH")}
    proc = subprocess.run([sys.executable, "-c", api_example()], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (f"the README's Python API example exited {proc.returncode}\n"
                                  f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    video = tmp_path / "runs" / "api-demo.mp4"
    assert video.is_file(), f"no {video}; the example's output:\n{proc.stdout[-2000:]}"
    frames = iio.imread(video, index=None)                        # (frames, H, W, 3): it decodes
    assert frames.ndim == 4 and frames.shape[0] > 0 and frames.shape[3] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "toyviz"]    # it wrote under runs/ only


def test_module_map_lists_every_module_of_the_tree():
    table = section("Module map")
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", table, re.M))
    package = ROOT / "toyviz"
    modules = {p.relative_to(package).as_posix() for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    # rows name subpackage modules relative to toyviz/ (`engine/config.py`), top-level ones as `toyviz/x.py`
    listed = {m.removeprefix("toyviz/") for m in listed} - {"app.py"}
    assert listed == modules, (f"README's module map is out of date: missing {sorted(modules - listed)}, "
                               f"no longer in the tree {sorted(listed - modules)}")
