"""The image-runs page's folders: it opens `toyviz.image` run folders only under the runs root the server was
started with (TOYVIZ_RUNS_ROOT, or `streamlit run app.py -- --runs-root DIR`; default `./runs`), refusing `..`,
absolute paths outside it and symlinks out of it, and reads each file within the size limits of `page.uploads`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from ..draw.frames import curves_of
from .uploads import LIMITS, MAX_RUN_SAMPLES, check_size

ROOT_VAR, ROOT_FLAG = "TOYVIZ_RUNS_ROOT", "--runs-root"


def runs_root(environ: Mapping[str, str] = os.environ, argv: Optional[Sequence[str]] = None) -> Path:
    """The folder the page may open runs under, resolved: `--runs-root DIR` among the script's arguments (what
    follows `--` on `streamlit run app.py -- --runs-root DIR`), else $TOYVIZ_RUNS_ROOT, else `runs/` in the folder
    the server started in."""
    args = list(argv or [])
    for i, a in enumerate(args):
        if a == ROOT_FLAG and i + 1 < len(args):
            return Path(args[i + 1]).expanduser().resolve()
        if a.startswith(ROOT_FLAG + "="):
            return Path(a.split("=", 1)[1]).expanduser().resolve()
    return Path(environ.get(ROOT_VAR) or "runs").expanduser().resolve()


def inside(root: Path, typed: str) -> Path:
    """The folder `typed` names under `root` (relative to it, or absolute within it), with every symlink resolved;
    ValueError for `..`, a path outside the root, or a symlink that leads out of it."""
    text = str(typed).strip()
    if any(part == ".." for part in Path(text).parts):
        raise ValueError(f"{text}: '..' is not allowed; give a run folder under {root}")
    path = Path(text).expanduser()
    path = path if path.is_absolute() else root / path
    if not _within(root, path.absolute()):
        raise ValueError(f"{text} is outside the runs root {root}; this page opens run folders under it only")
    real = path.resolve()
    if not _within(root, real):
        raise ValueError(f"{text} is a link out of the runs root {root}; this page opens run folders under it only")
    return real


MAX_LISTED, LIST_DEPTH = 500, 3      # run folders the page lists to choose from, and how deep it looks for them


def find_image_runs(root: Path) -> list[str]:
    """The run folders (holding a config.json) under `root`, at most LIST_DEPTH levels down and MAX_LISTED of
    them, as paths relative to the root, sorted; links are not followed, so nothing outside the root is listed."""
    found: list[str] = []
    if not root.is_dir():
        return found
    for here, dirs, files in os.walk(root, followlinks=False):
        rel = Path(here).relative_to(root)
        if "config.json" in files and rel.parts and not os.path.islink(Path(here) / "config.json"):
            found.append(rel.as_posix())
        if len(rel.parts) >= LIST_DEPTH or len(found) >= MAX_LISTED:
            dirs.clear()
        dirs.sort()
    return sorted(found)[:MAX_LISTED]


def _within(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


@dataclass
class ImageRun:
    """What the page shows of an image-scale run folder: sample grids by step, the stats, the config."""
    path: Path
    samples: list[tuple[int, Path]]
    stats: list[dict]
    config: dict

    def curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-key (steps, values): each row's own `step`, so a curve's x axis is the training step."""
        return curves_of(self.stats)


def open_image_run(typed, root: Path) -> ImageRun:
    """Read the image-scale run folder `typed` names under `root` (`config.json`, `stats.jsonl`,
    `samples_XXXXXX.png`), each file within its size limit; files that are links out of the root, and sample
pictures over their limit, are left out."""
    p = inside(root, typed)
    if not p.is_dir():
        raise ValueError(f"{typed} is not a folder under the runs root {root}")
    config_path = p / "config.json"
    if not config_path.is_file() or not _within(root, config_path.resolve()):
        raise ValueError(f"{typed} is not a run folder: config.json is missing")
    try:
        check_size("run config", config_path.stat().st_size)
        config = json.loads(config_path.read_text())
        stats = []
        stats_path = p / "stats.jsonl"
        if stats_path.is_file() and _within(root, stats_path.resolve()):
            check_size("run stats", stats_path.stat().st_size)
            stats = [json.loads(line) for line in stats_path.read_text().splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{typed}: a run file is not valid JSON ({str(e)[:120]})") from None
    samples = []
    for f in p.glob("samples_*.png"):
        digits = f.stem.split("_", 1)[1]
        if digits.isdigit() and _within(root, f.resolve()) and f.stat().st_size <= LIMITS["run samples"][0]:
            samples.append((int(digits), f))
            if len(samples) > MAX_RUN_SAMPLES:
                raise ValueError(f"{typed} holds more than {MAX_RUN_SAMPLES} sample pictures; this page shows at "
                                 "most that many (the page's limits, toyviz/page/uploads.py)")
    return ImageRun(p, sorted(samples), [s for s in stats if isinstance(s, dict)],
                    config if isinstance(config, dict) else {})

