"""The package as others get it: the import-layer contracts hold (pyproject.toml's [tool.importlinter]), the wheel
holds toyviz and its entry points but not the repository's tests, and `python -m toyviz` runs from any folder, even
one that holds a bare `toyviz/` folder (which Python would otherwise take for a namespace package)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd, cwd, env=None, timeout=120):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def shown(proc) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH")}
    return {**env, **extra}


def test_import_layers_hold():
    lint = BIN / "lint-imports"
    assert lint.exists(), f"{lint} is missing: pip install -r requirements.txt (import-linter is in the dev extra)"
    proc = run([lint, "--no-cache", "--no-logo"], cwd=ROOT)
    assert proc.returncode == 0, "lint-imports found broken contracts (pyproject.toml [tool.importlinter]):\n" + \
        shown(proc)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a snapshot of the checkout (not in place: setuptools would leave build/ in the checkout,
    and a stale build/lib would put moved modules back into later wheels). Returns (wheel path, snapshot)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "toyviz", src / "toyviz", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    proc = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                "-w", tmp / "dist", src], cwd=tmp, env=clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"), timeout=300)
    assert proc.returncode == 0, "pip wheel failed:\n" + shown(proc)
    wheels = list((tmp / "dist").glob("toyviz-*.whl"))
    assert len(wheels) == 1, shown(proc)
    return wheels[0], src


@pytest.fixture(scope="module")
def unpacked(wheel, tmp_path_factory):
    """The wheel unpacked into a folder, as `pip install --target` lays a pure-Python wheel."""
    target = tmp_path_factory.mktemp("target")
    with zipfile.ZipFile(wheel[0]) as z:
        z.extractall(target)
    return target


def test_wheel_holds_the_package_and_entry_points_only(wheel):
    path, src = wheel
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = z.read(info).decode()
        metadata = z.read(info.replace("entry_points.txt", "METADATA")).decode()
    assert "toyviz/engine/trainer.py" in names
    # every module of the source tree: a subpackage without __init__.py would be left out silently
    missing = sorted(p.relative_to(src).as_posix() for p in (src / "toyviz").rglob("*.py")
                     if p.relative_to(src).as_posix() not in names)
    assert not missing, f"modules left out of the wheel (a folder without __init__.py?): {missing}"
    tops = {n.split("/")[0] for n in names}
    assert "tests" not in tops and not any(n.startswith("tests/") for n in names), sorted(tops)
    assert {t for t in tops if not t.endswith(".dist-info")} == {"toyviz"}, sorted(tops)   # no docs/, assets/, app.py
    console = entry_points.split("[console_scripts]")[1].split("[")[0]
    scripts = dict(line.replace(" ", "").split("=", 1) for line in console.splitlines() if "=" in line)
    assert scripts == {"toyviz": "toyviz.commands.cli:main", "toyviz-image": "toyviz.commands.image:main"}
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert "torch==2.13.0" in requires, requires
    assert not any(r.startswith("torchvision") for r in requires), requires


def shadowing_folder(tmp_path) -> Path:
    """A working folder holding an empty `toyviz/`: Python would take it for a namespace package."""
    (tmp_path / "toyviz").mkdir()
    return tmp_path


def test_wheel_runs_from_another_folder(unpacked, tmp_path):
    cwd = shadowing_folder(tmp_path)
    env = clean_env(PYTHONPATH=str(unpacked))
    proc = run([sys.executable, "-m", "toyviz", "presets"], cwd=cwd, env=env)
    assert proc.returncode == 0, shown(proc)
    assert "ring8" in proc.stdout.split(), shown(proc)
    proc = run([sys.executable, "-c", "import toyviz; print(toyviz.__file__); toyviz.Config"], cwd=cwd, env=env)
    assert proc.returncode == 0 and Path(proc.stdout.strip()).is_relative_to(unpacked), shown(proc)


def installed() -> dict | None:
    """How this venv holds toyviz (requirements.txt installs it editable): asked from an empty folder, since a
    checkout's toyviz.egg-info (left by an editable install) would answer for the checkout itself."""
    code = ("import importlib.metadata as m, json\n"
            "try:\n    d = m.distribution('toyviz')\nexcept m.PackageNotFoundError:\n    print('null')\n"
            "else:\n    print(json.dumps({'version': d.version, 'direct_url': d.read_text('direct_url.json')}))")
    with tempfile.TemporaryDirectory() as empty:
        proc = run([sys.executable, "-c", code], cwd=empty, env=clean_env())
    assert proc.returncode == 0, shown(proc)
    return json.loads(proc.stdout)


INSTALLED = installed()


def editable() -> bool:
    url = INSTALLED and INSTALLED["direct_url"]
    return bool(url) and json.loads(url).get("dir_info", {}).get("editable", False)


needs_install = pytest.mark.skipif(INSTALLED is None, reason="toyviz is not installed in this venv: "
                                   "pip install -r requirements.txt (the wheel tests above still run)")


@needs_install
def test_installed_module_runs_from_another_folder(tmp_path):
    proc = run([sys.executable, "-m", "toyviz", "presets"], cwd=shadowing_folder(tmp_path), env=clean_env())
    assert proc.returncode == 0, shown(proc)
    assert "ring8" in proc.stdout.split(), shown(proc)


@needs_install
def test_installed_console_script_runs():
    script = BIN / "toyviz"
    assert script.exists(), f"{script} missing: the install did not create the console script"
    proc = run([script, "presets"], cwd=ROOT.parent, env=clean_env())
    assert proc.returncode == 0 and "ring8" in proc.stdout.split(), shown(proc)


@needs_install
def test_installed_facade_beats_a_shadowing_folder(tmp_path):
    """`import toyviz` must give the package (its facade: Config, Trainer, presets), not the bare folder."""
    proc = run([sys.executable, "-c", "import toyviz; print(toyviz.__file__); toyviz.Config"],
               cwd=shadowing_folder(tmp_path), env=clean_env())
    # An editable install in setuptools' default mode loses here (its import hook runs after the path finder has
    # taken the bare folder for a namespace package): requirements.txt asks for editable_mode=compat, a .pth file.
    assert proc.returncode == 0, shown(proc)
