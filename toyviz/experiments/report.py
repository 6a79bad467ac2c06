"""Reports over sweeps: mean ± standard error over seeds of every evaluated number, as markdown and PNG plots
(200 dpi, every axis labelled).

Reads run folders (`<label>/seed<N>/config.json + stats.jsonl`, as `toyviz sweep` writes them); groups runs by
label; the numbers are the trainer's periodic evaluation: `eval/modes`, `eval/hq`, `eval/reverse_kl` (METHODS §5)
and, when logged, `div/...` (pattern diversity of fake points) and `regions/...` (region counts per layer). The
coverage table ends with noise baselines (`engine.noise_baselines`) scored by the same code; `--pair` verdicts
carry paired statistics (`paired_stats`) and are withheld on modes and reverse KL where HQ is below HQ_FOR_VERDICTS.
"""
from __future__ import annotations

import dataclasses
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
from ..engine.config import Config, DataConfig
from ..engine.data import make_data
from ..engine.noise_baselines import BASELINES, baseline_coverage
from ..engine.noise_baselines import SAMPLES as BASELINE_SAMPLES
from .paired_stats import mean_se, p_text, paired_differences, sign_test
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


def load_runs(root, until: Optional[int] = None) -> list[Run]:
    """Every run folder under `root` (any depth); label = the name of the folder holding `seed<N>/`. With `until`,
    each run as it stood at step `until`: its log cut there, complete if it got there. That is what a run of `until`
    steps would have logged where nothing in training depends on the length, so a run whose learning rate follows
    its length (optim.lr_schedule) is refused."""
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
        end = cfg.optim.iters if until is None else until
        if until is not None:
            if cfg.optim.lr_schedule != "constant":
                raise ValueError(f"--until: {folder} has optim.lr_schedule {cfg.optim.lr_schedule!r}, so at step "
                                 f"{until} it is not a run of {until} steps (allowed: 'constant')")
            rows = [row for row in rows if row.get("step", 0) <= until]
            if rows and rows[-1].get("step") == until:
                error = ""                     # it failed, if at all, after the step it is read at
        complete = not error and bool(rows) and rows[-1].get("step") == end
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


def summary_table(groups: dict[str, list[Run]], at: list[Optional[int]], baselines: bool = False) -> str:
    """One row per label: seeds, then modes / HQ % / reverse KL at each step in `at` (None = final), then how many
    runs captured all modes at some evaluation and the median step at which they first did. With `baselines`,
    the noise baselines' rows follow (`baseline_rows`)."""
    head = ["method", "seeds"]
    for step in at:
        tag = "final" if step is None else f"step {step}"
        head += [f"{NAMES[k]} ({tag})" for k in CORE_KEYS]
    head.append("steps to all modes")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, runs in groups.items():
        row = [label, _seed_list([r.seed for r in runs])]
        for step in at:
            row += [fmt(*mean_se([value_at(r, k, step) for r in runs]), k) for k in CORE_KEYS]
        row.append(reached_text([steps_to_all_modes(r) for r in runs]))
        lines.append("| " + " | ".join(row) + " |")
    if baselines:
        lines += baseline_rows(groups, len(at))
    return "\n".join(lines)


def reached_text(steps: list[float]) -> str:
    """'7/10 reached, median 1,250 steps' (the count first: a mean over the runs that got there hides the others;
    the median of those runs' first steps), or 'none of 10 reached'."""
    hits = [t for t in steps if math.isfinite(t)]
    if not hits:
        return f"none of {len(steps)} reached"
    return f"{len(hits)}/{len(steps)} reached, median {float(np.median(hits)):,.0f} steps"


def baseline_rows(groups: dict[str, list[Run]], n_steps: int) -> list[str]:
    """Table rows of the noise baselines (`engine.noise_baselines`: uniform over the extent, smeared along the
    modes) for each mixture the runs train on, scored by the same `mode_coverage`, BASELINE_SAMPLES points drawn
    once per seed of the table (mean ± s.e. over those draws); the same numbers in every step's columns (a
    baseline does not train). No rows for a point cloud or a single mode."""
    runs = [r for rs in groups.values() for r in rs]
    seeds = sorted({r.seed for r in runs})
    mixtures: dict[str, tuple[str, DataConfig]] = {}          # data config -> (the first label using it, config)
    for r in runs:
        key = json.dumps(dataclasses.asdict(r.cfg.data), sort_keys=True)
        if r.cfg.data.kind != "points" and r.n_modes > 1:
            mixtures.setdefault(key, (r.label, r.cfg.data))
    rows = []
    for label, data in mixtures.values():
        for name, title in BASELINES.items():
            cov = [baseline_coverage(name, data, BASELINE_SAMPLES, seed) for seed in seeds]
            cells = [fmt(*mean_se([c.modes for c in cov]), "eval/modes"), fmt(*mean_se([c.hq for c in cov]), "eval/hq"),
                     fmt(*mean_se([c.reverse_kl for c in cov]), "eval/reverse_kl")]
            tag = f"*noise: {title}*" + (f" (data of {label})" if len(mixtures) > 1 else "")
            rows.append("| " + " | ".join([tag, _seed_list(seeds)] + cells * n_steps + ["–"]) + " |")
    return rows


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


HQ_FOR_VERDICTS = 0.5         # the fraction of HQ samples both arms need for a verdict on modes or reverse KL
HQ_RULE = ("Verdicts on modes, reverse KL and steps to all modes are drawn only where the mean HQ of both arms is "
           f"at least {100 * HQ_FOR_VERDICTS:.0f} % at that step (for steps to all modes: at the end), and withheld "
           "otherwise: those numbers count only the HQ samples, so below about half HQ they rank how widely G "
           "spreads, not how many modes it covers (the noise baselines' rows show such scores with no mode "
           "structure at all). Each verdict gives the paired mean difference (other − base) ± its standard error "
           "and a two-sided exact sign test over the seeds that differ.")
BASELINE_NOTE = (f"*noise* rows: samplers with no mode structure scored by the same code ({BASELINE_SAMPLES:,} "
                 "points, one draw per seed): *uniform over the extent* draws from the centres' bounding box widened "
                 "by half the smallest distance between two centres; *smeared along the modes* draws along the "
                 "ring's circle (or, on other mixtures, the segments joining nearest centres: a grid's lines) with "
                 "the modes' σ across it. A method near them on modes or reverse KL is not covering modes.")


def _verdict(name: str, d: list[float], words=("more", "as many", "fewer"), unit: str = "", digits: int = 2) -> str:
    """'more modes at the end on 7, as many on 1, fewer on 2: mean difference +1.90 ± 0.80, sign test p = 0.18
    (not significant)' for per-seed differences `d` (other − base)."""
    pd = paired_differences(d)
    if math.isinf(pd.mean):        # a reverse KL of ∞ (a seed without HQ samples): the sign test still counts it
        diff = "mean difference undefined (a seed's value is infinite)"
    elif math.isnan(pd.mean):
        diff = "mean difference –"
    else:
        se = "" if math.isnan(pd.se) else f" ± {pd.se:.{digits}f}"
        diff = f"mean difference {pd.mean:+.{digits}f}{se}{unit}"
    return (f"{words[0]} {name} on {pd.more}, {words[1]} on {pd.same}, {words[2]} on {pd.fewer}: {diff}, "
            f"{p_text(pd.p)}")


def paired(groups: dict[str, list[Run]], base: str, other: str, at: list[Optional[int]]) -> str:
    """Per-seed comparison of `other` against `base` on their common seeds, one verdict a line: modes at each step
    in `at`, then at the last of them HQ, reverse KL and region counts, and which reached all modes sooner; each
    with its paired mean difference ± s.e. and sign test (`_verdict`). Verdicts on modes, reverse KL and steps to
    all modes are withheld where either arm's mean HQ is below HQ_FOR_VERDICTS (HQ_RULE says why)."""
    for name in (base, other):
        if name not in groups:
            raise ValueError(f"--pair: no complete runs labelled {name!r} (have: {', '.join(groups)})")
    b = {r.seed: r for r in groups[base]}
    o = {r.seed: r for r in groups[other]}
    seeds = sorted(set(b) & set(o))
    if not seeds:
        raise ValueError(f"--pair {base},{other}: the two share no seed")

    def diffs(key, step):
        return [value_at(o[s], key, step) - value_at(b[s], key, step) for s in seeds]

    def withheld(step) -> str:
        """'' when both arms' mean HQ at `step` reaches the threshold, else why the verdict is withheld."""
        hq = [mean_se([value_at(runs[s], "eval/hq", step) for s in seeds])[0] for runs in (b, o)]
        if all(h >= HQ_FOR_VERDICTS for h in hq):
            return ""
        return (f"withheld: mean HQ {100 * hq[0]:.1f} % ({base}) and {100 * hq[1]:.1f} % ({other}), below "
                f"{100 * HQ_FOR_VERDICTS:.0f} %")

    def tag(step) -> str:
        return "at the end" if step is None else f"at step {step}"

    parts = []
    for step in at:
        why = withheld(step)
        parts.append(f"modes {tag(step)}: {why}" if why else _verdict(f"modes {tag(step)}", diffs("eval/modes", step)))
    last = at[-1]
    parts.append(_verdict(f"HQ {tag(last)}", [100 * x for x in diffs("eval/hq", last)], unit=" points", digits=1))
    why = withheld(last)
    parts.append(f"reverse KL {tag(last)}: {why}" if why else _verdict(
        f"reverse KL {tag(last)}", diffs("eval/reverse_kl", last), ("higher", "as high", "lower"), digits=3))
    for key in families(extra_keys([o[s] for s in seeds] + [b[s] for s in seeds])).get("regions", []):
        d = diffs(key, last)
        if not any(math.isnan(x) for x in d):
            parts.append(_verdict(f"{key} {tag(last)}", d, digits=1))
    t = [(steps_to_all_modes(o[s]), steps_to_all_modes(b[s])) for s in seeds]
    sooner, later = sum(x < y for x, y in t), sum(x > y for x, y in t)
    why = withheld(None)
    parts.append(f"all modes: {why}" if why else
                 f"all modes sooner on {sooner}, at the same evaluation on {sum(x == y < math.inf for x, y in t)}, "
                 f"later on {later}, neither ever on {sum(x == y == math.inf for x, y in t)}: "
                 f"{p_text(sign_test(sooner, later))}")
    return f"**{other}** vs **{base}**, {len(seeds)} common seeds:\n" + "\n".join(f"- {p}" for p in parts)


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
    legend = fig.legend(handles, names, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    wide = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi + 0.2      # inches, with a margin
    if wide > fig.get_figwidth():                        # long method names: widen the figure, not clip them
        fig.set_figwidth(wide)
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
                 title: str = "", extras: Optional[list[str]] = None, baselines: bool = True,
                 until: Optional[int] = None) -> Report:
    """The markdown report of the runs under `root`; with `plot_dir`, also one PNG per number (links in the
    markdown are relative to the folder `link_from`, default `plot_dir`'s parent). `extras` keeps only those
    families of per-layer numbers (e.g. ['regions', 'div/patterns']); None keeps all. `baselines` adds the noise
    baselines' rows to the coverage table (`baseline_rows`). `until`: the runs as they stood at that step
    (`load_runs`)."""
    runs = select_runs(root, labels=labels, extras=extras, until=until)
    groups = group(runs)
    if labels:
        groups = {lb: groups[lb] for lb in labels}
    at = at or [None]
    chosen = [r for rs in groups.values() for r in rs]
    md = [f"### {title}\n" if title else ""]
    table = summary_table(groups, at, baselines)
    md.append(table)
    if "∞" in table:
        md += ["", UNDEFINED_KL]
    if "| *noise: " in table:
        md += ["", BASELINE_NOTE]
    table = extras_table(groups, at[-1])
    if table:
        tag = "at the end" if at[-1] is None else f"at step {at[-1]}"
        md += ["", f"Region counts and pattern diversity of the fake points, {tag}. Columns are D's layers: "
               f"`regions` and `div/cumulative` count the regions of layers 1..l together (on the grid; holding a "
               f"fake point), `div/patterns` and `div/entropy` the patterns of layer l alone:", "", table]
    for base, other in pairs or []:
        md += ["", paired(groups, base, other, at)]
    if pairs:
        md += ["", HQ_RULE]
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


def select_runs(root, *, labels: Optional[list[str]] = None, extras: Optional[list[str]] = None,
                until: Optional[int] = None) -> list[Run]:
    """The runs under `root` as a report reads them (as they stood at step `until`, `load_runs`): `extras` keeps
    only those per-layer families; with `labels`, only those labels' runs, each label having complete runs."""
    runs = load_runs(root, until)
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
