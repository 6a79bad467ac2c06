"""Reports over sweeps: mean ± standard error over seeds of every evaluated number, as markdown and PNG plots
(200 dpi, every axis labelled).

Reads run folders (`<label>/seed<N>/config.json + stats.jsonl`, as `toyviz sweep` writes them); groups runs by
label; the numbers are the trainer's periodic evaluation: `eval/modes`, `eval/hq`, `eval/reverse_kl` (METHODS §5)
and, when logged, `div/...` (pattern diversity of fake points) and `regions/...` (region counts per layer).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..draw.frames import layers_name
from ..draw.polygon_figure import save_figure
from ..engine.atomic_files import atomic_write_text
from ..engine.config import Config
from ..engine.data import make_data
from .sweep import ERROR_FILE

CORE_KEYS = ("eval/modes", "eval/hq", "eval/reverse_kl")
EXTRA_PREFIXES = ("div/", "regions/")
NAMES = {"eval/modes": "modes", "eval/hq": "HQ %", "eval/reverse_kl": "reverse KL"}
UNDEFINED_KL = ("∞: reverse KL undefined: on at least one seed no fake point was of high quality, and the reverse "
                "KL is measured over those (METHODS §5).")
# What a plot's y axis shows, per number or per-layer family
Y_LABELS = {"eval/modes": "modes captured", "eval/hq": "high-quality samples (%)",
            "eval/reverse_kl": "reverse KL (nats)", "regions": "regions of layers 1..l (grid)",
            "div/patterns": "patterns of layer l (fakes)", "div/cumulative": "regions of layers 1..l (fakes)",
            "div/entropy": "pattern entropy of layer l (nats)", "div/grad_dirs": "∇ₓD directions (fakes)"}
PLOT_DPI = 200


@dataclass
class Run:
    label: str
    seed: int
    cfg: Config
    n_modes: int
    series: dict[str, tuple[np.ndarray, np.ndarray]]   # key -> (steps, values); inf where the log holds null
    complete: bool                                     # reached cfg.optim.iters without error
    error: str = ""


def _series(rows: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out: dict[str, tuple[list, list]] = {}
    for row in rows:
        if "eval/modes" not in row:
            continue
        for k, v in row.items():
            if k in CORE_KEYS or k.startswith(EXTRA_PREFIXES):
                s, vals = out.setdefault(k, ([], []))
                s.append(row["step"])
                vals.append(math.inf if v is None else float(v))    # null = inf/NaN (no HQ sample: KL = inf)
    return {k: (np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64)) for k, (s, v) in out.items()}


def load_runs(root) -> list[Run]:
    """Every run folder under `root` (any depth); label = the name of the folder holding `seed<N>/`."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder of runs")
    runs = []
    for cfg_path in sorted(root.rglob("config.json")):
        folder = cfg_path.parent
        cfg = Config.from_json(cfg_path)
        label = folder.parent.name if folder != root else cfg.preset
        rows = []
        if (folder / "stats.jsonl").exists():
            rows = [json.loads(ln) for ln in (folder / "stats.jsonl").read_text().splitlines() if ln.strip()]
        error = (folder / ERROR_FILE).read_text().strip() if (folder / ERROR_FILE).exists() else ""
        complete = not error and bool(rows) and rows[-1].get("step") == cfg.optim.iters
        runs.append(Run(label, cfg.seed, cfg, make_data(cfg.data).n_modes, _series(rows), complete, error))
    if not runs:
        raise ValueError(f"no run folders (config.json) under {root}")
    return runs


def group(runs: list[Run]) -> dict[str, list[Run]]:
    """Complete runs by label, in first-seen order, each list sorted by seed."""
    out: dict[str, list[Run]] = {}
    for r in runs:
        if r.complete:
            out.setdefault(r.label, []).append(r)
    return {k: sorted(v, key=lambda r: r.seed) for k, v in out.items()}


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error s/√n (s with n−1) of the values that were logged (NaN = not logged, left out);
    se is NaN for one value; the mean is inf if any value is inf."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return math.nan, math.nan
    if not np.all(np.isfinite(v)):
        return math.inf, math.nan
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan


def value_at(run: Run, key: str, step: Optional[int]) -> float:
    """The run's `key` at the last evaluation at or before `step` (None: the final evaluation); NaN if absent."""
    if key not in run.series:
        return math.nan
    s, v = run.series[key]
    idx = len(s) - 1 if step is None else int(np.searchsorted(s, step, side="right")) - 1
    return float(v[idx]) if idx >= 0 else math.nan


def steps_to_all_modes(run: Run) -> float:
    """The first evaluated step at which every mode is captured; inf if that never happens."""
    s, v = run.series.get("eval/modes", (np.zeros(0), np.zeros(0)))
    hit = np.nonzero(v >= run.n_modes)[0]
    return float(s[hit[0]]) if len(hit) else math.inf


def curve(runs: list[Run], key: str):
    """(steps, mean, se) over the steps every run evaluated; None when no run logged `key`."""
    have = [r for r in runs if key in r.series]
    if not have:
        return None
    steps = have[0].series[key][0]
    for r in have[1:]:
        steps = np.intersect1d(steps, r.series[key][0])
    vals = np.stack([r.series[key][1][np.searchsorted(r.series[key][0], steps)] for r in have])   # (runs, steps)
    mean = vals.mean(0)
    se = vals.std(0, ddof=1) / math.sqrt(len(have)) if len(have) > 1 else np.zeros_like(mean)
    return steps, mean, se


# ---- markdown ---------------------------------------------------------------------------------------------------
def fmt(mean: float, se: float, key: str = "") -> str:
    if key == "eval/hq":
        mean, se = 100 * mean, 100 * se
    if math.isnan(mean):
        return "–"
    if math.isinf(mean):
        return "∞"
    digits = 3 if key == "eval/reverse_kl" else 0 if key == "steps" else 1
    if key.startswith(EXTRA_PREFIXES) and abs(mean) < 1:
        digits = 3
    text = f"{mean:.{digits}f}"
    return text if math.isnan(se) else f"{text} ± {se:.{digits}f}"


def extra_keys(runs: list[Run]) -> list[str]:
    keys = {k for r in runs for k in r.series if k.startswith(EXTRA_PREFIXES)}
    return sorted(keys, key=_layer_sort)


def _layer_sort(key: str):
    fam, layer = layer_family(key)
    return fam, layer if layer is not None else -1


def layer_family(key: str) -> tuple[str, Optional[int]]:
    """`regions/l3` -> ('regions', 3); `div/grad_dirs` -> ('div/grad_dirs', None)."""
    m = re.fullmatch(r"(.*)/l(\d+)", key)
    return (m.group(1), int(m.group(2))) if m else (key, None)


def families(keys: list[str]) -> dict[str, list[str]]:
    """Per-layer keys grouped by family, in layer order: {'regions': ['regions/l1', ...], ...}."""
    out: dict[str, list[str]] = {}
    for k in sorted(keys, key=_layer_sort):
        out.setdefault(layer_family(k)[0], []).append(k)
    return out


def summary_table(groups: dict[str, list[Run]], at: list[Optional[int]]) -> str:
    """One row per label: seeds, then modes / HQ % / reverse KL at each step in `at` (None = final), then the
    steps until all modes were first captured (mean over the runs that got there, and how many did)."""
    head = ["method", "seeds"]
    for step in at:
        tag = "final" if step is None else f"step {step}"
        head += [f"{NAMES[k]} ({tag})" for k in CORE_KEYS]
    head.append("steps to all modes (runs that got there)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, runs in groups.items():
        row = [label, _seed_list([r.seed for r in runs])]
        for step in at:
            row += [fmt(*mean_se([value_at(r, k, step) for r in runs]), k) for k in CORE_KEYS]
        hits = [t for t in map(steps_to_all_modes, runs) if math.isfinite(t)]
        row.append(f"{fmt(*mean_se(hits), 'steps')} ({len(hits)}/{len(runs)})" if hits else f"never (0/{len(runs)})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def extras_table(groups: dict[str, list[Run]], step: Optional[int] = None) -> str:
    """Region counts and pattern diversity (when logged) at `step` (None = final): one row per (number, method),
    one column per D layer, mean ± se over seeds; '' when no run logged them."""
    fams = families(extra_keys([r for rs in groups.values() for r in rs]))
    if not fams:
        return ""
    width = max(len(ks) for ks in fams.values())
    head = ["number", "method"] + (["value"] if width == 1 else [f"layer {i}" for i in range(1, width + 1)])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for fam, keys in fams.items():
        for label, runs in groups.items():
            cells = [fmt(*mean_se([value_at(r, k, step) for r in runs]), k) for k in keys]
            lines.append("| " + " | ".join([fam, label] + cells + [""] * (width - len(cells))) + " |")
    return "\n".join(lines)


def paired(groups: dict[str, list[Run]], base: str, other: str, at: list[Optional[int]]) -> str:
    """Per-seed comparison of `other` against `base` on their common seeds: on how many seeds it captured
    more / as many / fewer modes at each step in `at`, and reached all modes sooner / at once / later."""
    for name in (base, other):
        if name not in groups:
            raise ValueError(f"--pair: no complete runs labelled {name!r} (have: {', '.join(groups)})")
    b = {r.seed: r for r in groups[base]}
    o = {r.seed: r for r in groups[other]}
    seeds = sorted(set(b) & set(o))
    if not seeds:
        raise ValueError(f"--pair {base},{other}: the two share no seed")
    parts = []
    for step in at:
        d = [value_at(o[s], "eval/modes", step) - value_at(b[s], "eval/modes", step) for s in seeds]
        tag = "at the end" if step is None else f"at step {step}"
        parts.append(f"more modes {tag} on {sum(x > 0 for x in d)}, as many on {sum(x == 0 for x in d)}, "
                     f"fewer on {sum(x < 0 for x in d)}")
    for key in families(extra_keys([o[s] for s in seeds] + [b[s] for s in seeds])).get("regions", []):
        d = [value_at(o[s], key, at[-1]) - value_at(b[s], key, at[-1]) for s in seeds]
        if not any(math.isnan(x) for x in d):
            parts.append(f"more {key} {'at the end' if at[-1] is None else f'at step {at[-1]}'} "
                         f"on {sum(x > 0 for x in d)}")
    t = [(steps_to_all_modes(o[s]), steps_to_all_modes(b[s])) for s in seeds]
    parts.append(f"all modes sooner on {sum(x < y for x, y in t)}, at the same evaluation on "
                 f"{sum(x == y < math.inf for x, y in t)}, later on {sum(x > y for x, y in t)}, "
                 f"neither ever on {sum(x == y == math.inf for x, y in t)}")
    return f"**{other}** vs **{base}**, {len(seeds)} common seeds: " + "; ".join(parts) + "."


def _seed_list(seeds: list[int]) -> str:
    seeds = sorted(seeds)
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
        return f"{seeds[0]}–{seeds[-1]}"
    return ",".join(map(str, seeds))


# ---- plots ------------------------------------------------------------------------------------------------------
def key_title(key: str) -> str:
    """A plot panel's title: the number's name, or for a per-layer number whose layers it covers."""
    fam, layer = layer_family(key)
    if layer is None:
        return NAMES.get(key, key)
    return layers_name(layer - 1, fam in ("regions", "div/cumulative"))


def plot_keys(groups: dict[str, list[Run]], keys: list[str], path: Path, title: str) -> bool:
    """Mean ± se against training steps, one line per label, one panel per key (e.g. per D layer), the y axis
    labelled with what it counts; PLOT_DPI. Steps where a seed's value is infinite (reverse KL with no
    high-quality sample) are gaps, and a note says so. False (nothing written) when no run logged any key."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    panels, gaps = [], False
    for key in keys:
        with np.errstate(invalid="ignore"):
            curves = {label: curve(runs, key) for label, runs in groups.items()}
        curves = {k: c for k, c in curves.items() if c is not None and np.any(np.isfinite(c[1]))}
        gaps |= any(not np.all(np.isfinite(c[1])) for c in curves.values())
        if curves:
            panels.append((key, curves))
    if not panels:
        return False
    n, ncol = len(panels), min(len(groups), 3)
    legend_rows = math.ceil(len(groups) / ncol)
    fig = Figure(figsize=(max(4.8, 2.7 * n + 0.9), 2.9 + 0.2 * legend_rows + 0.2 * gaps), dpi=PLOT_DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    cmap = colormaps["tab10" if len(groups) <= 10 else "tab20"]
    colors = [cmap(i) for i in range(cmap.N)]
    for ax, (key, curves) in zip(axes, panels):
        scale = 100.0 if key == "eval/hq" else 1.0
        for i, label in enumerate(groups):
            if label not in curves:
                continue
            steps, mean, se = curves[label]
            finite = np.isfinite(mean)
            mean, se = np.where(finite, mean, np.nan), np.where(finite, se, np.nan)
            c = colors[i % len(colors)]
            ax.plot(steps, scale * mean, color=c, lw=1.4, label=f"{label} (n={len(groups[label])})")
            ax.fill_between(steps, scale * (mean - se), scale * (mean + se), color=c, alpha=0.2, lw=0)
        ax.set_xlabel("training step", fontsize=8)
        ax.set_title(key_title(key), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    fam = layer_family(panels[0][0])[0]
    ylabel = Y_LABELS.get(panels[0][0], Y_LABELS.get(fam, fam))
    ks = {r.n_modes for rs in groups.values() for r in rs}
    if panels[0][0] == "eval/modes" and len(ks) == 1:
        ylabel += f" (of {ks.pop()})"
    axes[0].set_ylabel(ylabel, fontsize=8)
    handles, names = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:                                  # labels missing from the first panel
        for h, nm in zip(*ax.get_legend_handles_labels()):
            if nm not in names:
                handles.append(h)
                names.append(nm)
    fig.suptitle(f"{title}: mean ± standard error over seeds", fontsize=10)
    fig.legend(handles, names, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    if gaps:
        fig.text(0.5, 0.02 + 0.2 * legend_rows / fig.get_figheight(), "gaps: reverse KL undefined where a seed had "
                 "no high-quality sample", ha="center", va="bottom", fontsize=7, color="0.35")
    fig.tight_layout(rect=(0, (0.25 * legend_rows + 0.2 * gaps) / fig.get_figheight(), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=PLOT_DPI)
    return True


def plot_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_") + ".png"


# ---- the whole report -------------------------------------------------------------------------------------------
@dataclass
class Report:
    markdown: str
    plots: list[Path] = field(default_factory=list)      # the PNGs written


def make_report(root, **kw) -> str:
    """The markdown report of the runs under `root` (keywords as `build_report`), its plots written."""
    return build_report(root, **kw).markdown


def build_report(root, *, at: Optional[list[Optional[int]]] = None, labels: Optional[list[str]] = None,
                 pairs: Optional[list[tuple[str, str]]] = None, plot_dir=None, link_from=None,
                 title: str = "", extras: Optional[list[str]] = None) -> Report:
    """The markdown report of the runs under `root`; with `plot_dir`, also one PNG per number (links in the
    markdown are relative to the folder `link_from`, default `plot_dir`'s parent). `extras` keeps only those
    families of per-layer numbers (e.g. ['regions', 'div/patterns']); None keeps all."""
    runs = select_runs(root, labels=labels, extras=extras)
    groups = group(runs)
    if labels:
        groups = {lb: groups[lb] for lb in labels}
    at = at or [None]
    chosen = [r for rs in groups.values() for r in rs]
    md = [f"### {title}\n" if title else ""]
    md.append(summary_table(groups, at))
    if "∞" in md[-1]:
        md += ["", UNDEFINED_KL]
    table = extras_table(groups, at[-1])
    if table:
        tag = "at the end" if at[-1] is None else f"at step {at[-1]}"
        md += ["", f"Region counts and pattern diversity of the fake points, {tag}. Columns are D's layers: "
               f"`regions` and `div/cumulative` count the regions of layers 1..l together (on the grid; holding a "
               f"fake point), `div/patterns` and `div/entropy` the patterns of layer l alone:", "", table]
    for base, other in pairs or []:
        md += ["", paired(groups, base, other, at)]
    bad = [r for r in runs if not r.complete and (not labels or r.label in labels)]
    if bad:
        md += ["", "Left out (failed or unfinished): " + "; ".join(
            f"{r.label} seed {r.seed}" + (f" ({r.error})" if r.error else "") for r in bad) + "."]
    plots = []
    if plot_dir is not None:
        plot_dir = Path(plot_dir)
        base_dir = Path(link_from) if link_from is not None else plot_dir.parent
        links, missing = [], []
        figs = {NAMES[k]: [k] for k in CORE_KEYS}
        figs.update(families(extra_keys(chosen)))
        for name, keys in figs.items():
            path = plot_dir / plot_name(name)
            if plot_keys(groups, keys, path, name):
                plots.append(path)
                links.append(f"![{name}]({Path(os.path.relpath(path, base_dir)).as_posix()})")
            elif keys == ["eval/reverse_kl"]:
                missing.append("No reverse KL plot: for every method some seed had no high-quality sample at "
                               "every evaluation, so the mean is undefined throughout.")
        md += ["", " ".join(links)] + (["", *missing] if missing else [])
    return Report("\n".join(md).strip() + "\n", plots)


def select_runs(root, *, labels: Optional[list[str]] = None, extras: Optional[list[str]] = None) -> list[Run]:
    """The runs under `root` as a report reads them: `extras` keeps only those per-layer families; with `labels`,
    only those labels' runs, each label having complete runs."""
    runs = load_runs(root)
    if extras is not None:
        for r in runs:
            r.series = {k: v for k, v in r.series.items()
                        if k in CORE_KEYS or layer_family(k)[0] in extras}
    groups = group(runs)
    if labels:
        missing = [lb for lb in labels if lb not in groups]
        if missing:
            raise ValueError(f"--labels: no complete runs labelled {missing[0]!r} (have: {', '.join(groups)})")
    if not groups:
        raise ValueError(f"no complete runs under {root}")
    return runs


def insert_section(md_path, name: str, text: str) -> None:
    """Replace the block between `<!-- report:NAME -->` and `<!-- /report:NAME -->` in `md_path` (the rest of
    the page, its prose, is kept); append the block when the markers are absent."""
    md_path = Path(md_path)
    page = md_path.read_text() if md_path.exists() else ""
    start, end = f"<!-- report:{name} -->", f"<!-- /report:{name} -->"
    block = f"{start}\n{text.strip()}\n{end}"
    if start in page and end in page:
        i, j = page.index(start), page.index(end) + len(end)
        page = page[:i] + block + page[j:]
    else:
        page = page.rstrip() + ("\n\n" if page else "") + block + "\n"
    atomic_write_text(md_path, page)


def parse_at(text: str) -> list[Optional[int]]:
    """`500,1000,final` -> [500, 1000, None]."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "final":
            out.append(None)
        elif part.isdigit():
            out.append(int(part))
        else:
            raise ValueError(f"--at takes steps and 'final', comma-separated (got {part!r})")
    return out or [None]
