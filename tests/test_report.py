import json
import math

import numpy as np
import pytest

from toyviz.commands.cli import main
from toyviz.engine import presets
from toyviz.experiments.report import (
    families,
    group,
    insert_section,
    load_runs,
    make_report,
    mean_se,
    paired,
    parse_at,
    reached_text,
    steps_to_all_modes,
    value_at,
)


def write_run(root, label, seed, modes, hq, rkl, regions=None, iters=300, error=None):
    """A hand-made run folder: evaluations at steps 100, 200, 300 with the given numbers."""
    folder = root / label / f"seed{seed}"
    folder.mkdir(parents=True)
    presets.get("ring8").replace(seed=seed, **{"optim.iters": iters}).to_json(folder / "config.json")
    rows = []
    for i, step in enumerate((100, 200, 300)):
        rows.append({"step": step - 1, "loss/d": 1.0})
        row = {"step": step, "eval/modes": modes[i], "eval/hq": hq[i], "eval/reverse_kl": rkl[i]}
        if regions:
            row.update({f"regions/l{l + 1}": float(regions[l][i]) for l in range(len(regions))})
        rows.append(row)
    (folder / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if error:
        (folder / "error.txt").write_text(error + "\n")


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sw"
    write_run(root, "plain", 0, [2, 5, 8], [0.5, 0.8, 0.9], [None, 0.5, 0.1], regions=[[10, 12, 14], [20, 22, 24]])
    write_run(root, "plain", 1, [3, 6, 7], [0.6, 0.8, 0.7], [1.0, 0.3, 0.3], regions=[[12, 14, 16], [30, 32, 34]])
    write_run(root, "bre", 0, [4, 8, 8], [0.7, 0.9, 0.95], [0.4, 0.05, 0.02])
    write_run(root, "bre", 1, [3, 7, 8], [0.6, 0.9, 0.96], [0.5, 0.10, 0.03])
    write_run(root, "bre", 2, [1, 1, 1], [0.1, 0.1, 0.1], [0.1, 0.1, 0.1], error="TrainingDiverged: loss/d nan")
    return root


def test_mean_and_standard_error_by_hand():
    m, se = mean_se([1.0, 2.0, 4.0])
    assert m == pytest.approx(7 / 3)
    assert se == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2 / 3))
    assert math.isnan(mean_se([5.0])[1]) and mean_se([5.0])[0] == 5.0
    assert mean_se([1.0, math.inf])[0] == math.inf
    assert mean_se([1.0, math.nan, 3.0]) == (2.0, 1.0)         # NaN: a run that did not log the number


def test_load_group_values_and_steps_to_all_modes(sweep):
    runs = load_runs(sweep)
    assert len(runs) == 5
    groups = group(runs)
    assert list(groups) == ["bre", "plain"] and [r.seed for r in groups["bre"]] == [0, 1]   # seed 2 failed
    p0 = groups["plain"][0]
    assert value_at(p0, "eval/modes", None) == 8 and value_at(p0, "eval/modes", 250) == 5
    assert math.isnan(value_at(p0, "eval/modes", 50))
    assert value_at(p0, "eval/reverse_kl", 100) == math.inf      # null in the log: no HQ sample
    assert steps_to_all_modes(p0) == 200 + 100 and steps_to_all_modes(groups["plain"][1]) == math.inf
    assert steps_to_all_modes(groups["bre"][0]) == 200


def test_paired_counts_seeds(sweep):
    groups = group(load_runs(sweep))
    text = paired(groups, "plain", "bre", [200, None])
    assert text.startswith("**bre** vs **plain**, 2 common seeds:\n- ")
    # modes at 200: bre 8, 7 against plain 5, 6 -> +3, +1: mean +2 ± 1; 2 more, 0 fewer -> p = 2·(1/4) = 0.5
    assert ("- more modes at step 200 on 2, as many on 0, fewer on 0: mean difference +2.00 ± 1.00, "
            "sign test p = 0.5 (not significant)") in text
    assert "- more modes at the end on 1, as many on 1, fewer on 0: mean difference +0.50 ± 0.50" in text
    # HQ at the end: 95 − 90, 96 − 70 -> +5, +26 points: mean 15.5 ± 10.5
    assert "- more HQ at the end on 2, as many on 0, fewer on 0: mean difference +15.5 ± 10.5 points" in text
    assert "- higher reverse KL at the end on 0, as high on 0, lower on 2: mean difference -0.175 ± 0.095" in text
    assert ("- all modes sooner on 2, at the same evaluation on 0, later on 0, neither ever on 0: "
            "sign test p = 0.5 (not significant)") in text
    assert "regions" not in text                                     # bre logged none: nothing to pair
    write_run(sweep, "more", 0, [2, 5, 8], [0.5, 0.8, 0.9], [1, 1, 1], regions=[[10, 12, 13], [20, 22, 25]])
    write_run(sweep, "more", 1, [3, 6, 7], [0.6, 0.8, 0.7], [1, 1, 1], regions=[[12, 14, 17], [30, 32, 30]])
    text = paired(group(load_runs(sweep)), "plain", "more", [None])
    assert "- more regions/l1 at the end on 1, as many on 0, fewer on 1: mean difference +0.0 ± 1.0" in text
    assert "- more regions/l2 at the end on 1, as many on 0, fewer on 1: mean difference -1.5 ± 2.5" in text
    with pytest.raises(ValueError, match="no complete runs labelled 'nope'"):
        paired(groups, "plain", "nope", [None])


def test_mode_verdicts_are_withheld_below_half_hq(tmp_path):
    root = tmp_path / "sw"
    for seed in (0, 1, 2):        # at step 100 "b" has 40 % HQ: its modes say how far it spreads, not coverage
        write_run(root, "a", seed, [5, 6, 8], [0.6, 0.7, 0.9], [0.3, 0.2, 0.2])
        write_run(root, "b", seed, [8, 8, 8], [0.4, 0.7, 0.9], [0.1, 0.1, 0.1])
    text = paired(group(load_runs(root)), "a", "b", [100, 200, None])
    assert "- modes at step 100: withheld: mean HQ 60.0 % (a) and 40.0 % (b), below 50 %" in text
    assert "- more modes at step 200 on 3, as many on 0, fewer on 0: mean difference +2.00 ± 0.00, " \
           "sign test p = 0.25 (not significant)" in text        # p = 2 · (1/2)³
    # reverse KL is judged at the last step, where both arms have 90 % HQ
    assert "- higher reverse KL at the end on 0, as high on 0, lower on 3: mean difference -0.100 ± 0.000" in text
    md = make_report(root, pairs=[("a", "b")], at=[100, None])
    assert "withheld otherwise" in md and "at least 50 %" in md


def test_steps_to_all_modes_say_how_many_runs_got_there():
    assert reached_text([1000.0, math.inf, 1500.0, 1250.0]) == "3/4 reached, median 1,250 steps"
    assert reached_text([math.inf, math.inf]) == "none of 2 reached"


def test_noise_baselines_rows_come_from_the_coverage_code(sweep):
    from toyviz.engine.noise_baselines import baseline_coverage
    md = make_report(sweep, at=[200, None])
    rows = [line for line in md.splitlines() if line.startswith("| *noise: ")]
    assert [r.split(" | ")[0] for r in rows] == ["| *noise: uniform over the extent*",
                                                 "| *noise: smeared along the modes*"]
    data = presets.get("ring8").data                                # write_run's runs are ring8, seeds 0, 1
    modes = [baseline_coverage("smeared", data, 2500, s).modes for s in (0, 1)]
    hq = [baseline_coverage("smeared", data, 2500, s).hq for s in (0, 1)]
    cells = rows[1].strip("| ").split(" | ")
    se = np.std(modes, ddof=1) / np.sqrt(2)
    assert cells[1] == "0,1" and cells[2] == cells[5] == f"{np.mean(modes):.1f} ± {se:.1f}"   # same at every step
    assert cells[3] == f"{100 * np.mean(hq):.1f} ± {100 * np.std(hq, ddof=1) / np.sqrt(2):.1f}" and cells[-1] == "–"
    assert "*noise* rows: samplers with no mode structure" in md
    assert "| *noise: " not in make_report(sweep, baselines=False)


def test_report_table_extras_and_plots(sweep, tmp_path):
    md = make_report(sweep, at=parse_at("200,final"), pairs=[("plain", "bre")], plot_dir=tmp_path / "out/plots",
                     link_from=tmp_path / "out", title="toy")
    row = next(line for line in md.splitlines() if line.startswith("| plain |"))
    # modes at 200: 5, 6 -> 5.5 ± 0.5; final: 8, 7 -> 7.5 ± 0.5; HQ 90%, 70% -> 80.0 ± 10.0;
    # KL final .1, .3 -> 0.200 ± 0.100
    assert "| 0,1 | 5.5 ± 0.5 | 80.0 ± 0.0 |" in row and "| 7.5 ± 0.5 | 80.0 ± 10.0 | 0.200 ± 0.100 |" in row
    assert row.endswith("| 1/2 reached, median 300 steps |")
    assert "| regions | plain | 15.0 ± 1.0 | 29.0 ± 5.0 |" in md
    assert "| regions | bre | – | – |" in md                      # bre logged no region counts
    assert "Left out (failed or unfinished): bre seed 2 (TrainingDiverged: loss/d nan)." in md
    assert "![modes](plots/modes.png)" in md and "![regions](plots/regions.png)" in md
    for name in ("modes", "HQ", "reverse_KL", "regions"):
        png = (tmp_path / "out/plots" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 300_000
    only = make_report(sweep, labels=["plain"], extras=[])
    assert "| bre |" not in only and "regions" not in only


def test_families_group_per_layer_keys():
    assert families(["regions/l2", "div/grad_dirs", "regions/l10", "regions/l1"]) == {
        "div/grad_dirs": ["div/grad_dirs"], "regions": ["regions/l1", "regions/l2", "regions/l10"]}


def test_insert_section_keeps_the_prose(tmp_path):
    page = tmp_path / "R.md"
    page.write_text("# Results\n\nProse before.\n\n<!-- report:a -->\nold\n<!-- /report:a -->\n\nProse after.\n")
    insert_section(page, "a", "new table")
    insert_section(page, "b", "second")
    text = page.read_text()
    assert "Prose before." in text and "Prose after." in text and "old" not in text
    assert "<!-- report:a -->\nnew table\n<!-- /report:a -->" in text
    assert text.rstrip().endswith("<!-- report:b -->\nsecond\n<!-- /report:b -->")


def test_cli_report_writes_markdown_and_rejects_bad_input(sweep, tmp_path, capsys):
    assert main(["report", str(sweep), "--at", "100,final", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert (sweep / "report.md").read_text() == out and "modes (step 100)" in out
    page = tmp_path / "docs/RESULTS.md"
    page.parent.mkdir()
    page.write_text("intro\n")
    assert main(["report", str(sweep), "--into", str(page), "--section", "toy", "--extras", "regions"]) == 0
    assert "<!-- report:toy -->" in page.read_text() and (tmp_path / "docs/results/toy/regions.png").exists()
    capsys.readouterr()
    for argv, match in [([str(tmp_path / "nothing")], "is not a folder of runs"),
                        ([str(sweep), "--at", "soon"], "--at takes steps and 'final'"),
                        ([str(sweep), "--pair", "plain"], "--pair takes BASE,OTHER"),
                        ([str(sweep), "--labels", "x"], "no complete runs labelled 'x'")]:
        assert main(["report", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert match in err and len(err.splitlines()) == 1


def test_a_plot_widens_for_long_method_names(tmp_path):
    """Eight methods with long names in one panel: the legend's three columns would overflow a 4.8-inch figure;
    the figure widens to hold them (what the converged grid25 plots need)."""
    from PIL import Image

    from toyviz.experiments.report import build_report
    root = tmp_path / "sw"
    names = [f"grid25-a-long-method-name-{i}" for i in range(8)]
    for name in names:
        write_run(root, name, 0, [2, 5, 8], [0.5, 0.8, 0.9], [0.5, 0.3, 0.1])
    report = build_report(root, plot_dir=tmp_path / "plots")
    with Image.open(tmp_path / "plots" / "HQ.png") as im:
        width_in = im.size[0] / im.info["dpi"][0]
    assert width_in > 4.8 + 1                               # 3 columns of ~36-character labels need far more
    assert report.plots


def test_plots_at_print_resolution_with_labelled_axes(sweep, tmp_path):
    from PIL import Image

    from toyviz.experiments.report import Y_LABELS, build_report, key_title
    report = build_report(sweep, plot_dir=tmp_path / "plots")
    assert [p.name for p in report.plots] == ["modes.png", "HQ.png", "reverse_KL.png", "regions.png"]
    for png in report.plots:
        with Image.open(png) as im:
            assert im.info["dpi"][0] == pytest.approx(200, abs=1) and im.size[0] >= 900
    assert key_title("regions/l3") == "layers 1–3" and key_title("div/patterns/l2") == "layer 2"
    assert Y_LABELS["regions"] == "regions of layers 1..l (grid)"
    assert "∞: reverse KL undefined" not in report.markdown          # every final mean is finite here


def test_undefined_reverse_kl_is_explained(tmp_path):
    root = tmp_path / "sw"
    write_run(root, "a", 0, [1, 1, 1], [0.0, 0.0, 0.0], [None, None, None])
    write_run(root, "a", 1, [1, 1, 1], [0.1, 0.1, 0.1], [0.5, 0.5, 0.5])
    md = make_report(root, plot_dir=tmp_path / "plots")
    assert "| ∞ |" in md and "∞: reverse KL undefined: on at least one seed no fake point was of high quality" in md
    assert "No reverse KL plot" in md and not (tmp_path / "plots" / "reverse_KL.png").exists()


def test_cli_report_names_every_file_it_wrote(sweep, capsys):
    assert main(["report", str(sweep)]) == 0
    out, err = capsys.readouterr()
    last = err.strip().splitlines()[-1]
    assert (sweep / "report.md").read_text() == out                   # stdout: the markdown alone
    assert last.startswith(f"report -> {sweep / 'report.md'}; plots in {sweep / 'plots'}: modes.png, HQ.png")
    assert all(name in last for name in ("reverse_KL.png", "regions.png"))


def test_a_verdict_with_an_infinite_difference_says_so_and_keeps_its_sign_test():
    """A seed whose reverse KL is ∞ (no HQ sample) makes the mean difference undefined, not '+inf ± nan'; the
    sign test still counts that seed as higher."""
    from toyviz.experiments.report import _verdict
    text = _verdict("reverse KL at the end", [math.inf, 0.1, 0.2, 0.3, 0.4, 0.5],
                    words=("higher", "as high", "lower"), digits=3)
    assert text.startswith("higher reverse KL at the end on 6, as high on 0, lower on 0: ")
    assert "mean difference undefined (a seed's value is infinite)" in text and "inf" not in text.split(":")[1][:40]
    assert "p = 0.031" in text
    assert "mean difference -0.50 ± 0.60" in _verdict("modes", [0.1, -1.1])          # finite: as before
    assert "mean difference undefined" in _verdict("reverse KL", [-math.inf, 0.1])  # the base arm's ∞


def test_until_reads_each_run_as_it_stood_at_that_step(sweep):
    runs = {(r.label, r.seed): r for r in load_runs(sweep, until=200)}
    assert all(r.complete for r in runs.values())                  # the diverged seed got past step 200
    assert value_at(runs[("plain", 0)], "eval/modes", None) == 5 and steps_to_all_modes(runs[("bre", 0)]) == 200
    assert not any(r.complete for r in load_runs(sweep, until=250))    # no evaluation at 250: nobody stood there
    folder = sweep / "plain" / "seed0"
    presets.get("bre-toy").replace(**{"optim.iters": 300}).to_json(folder / "config.json")
    with pytest.raises(ValueError, match="optim.lr_schedule 'linear'.*allowed: 'constant'"):
        load_runs(sweep, until=200)


def test_until_gives_the_report_of_the_shorter_run(tmp_path, capsys):
    tiny = ["--set", "nets.g.width=8", "--set", "nets.d.width=8", "--set", "optim.batch_size=16",
            "--set", "viz.eval_samples=64", "--set", "viz.metrics_every=3"]
    for root, iters in (("long", 12), ("short", 6)):
        assert main(["train", "--preset", "ring8", *tiny, "--iters", str(iters),
                     "--out", str(tmp_path / root / "ring8" / "seed0")]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "short"), "--at", "3,final", "--no-plots", "--no-baselines"]) == 0
    short = capsys.readouterr().out
    assert main(["report", str(tmp_path / "long"), "--at", "3,final", "--no-plots", "--no-baselines",
                 "--until", "6"]) == 0
    assert capsys.readouterr().out == short and "modes (final)" in short
    assert main(["report", str(tmp_path / "long"), "--at", "3,final", "--no-plots", "--no-baselines"]) == 0
    assert capsys.readouterr().out != short                         # step 12 is another table
