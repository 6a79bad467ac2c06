"""Hostile input: configs (any key of the tree, any JSON value), CSV uploads, config.json files and checkpoint
files either train a few steps, are refused with a one-line ValueError, or stop with TrainingDiverged — never
another exception, a hang or a half-written file. TOYVIZ_FUZZ_EXAMPLES=N runs N examples per test (CI: a few)."""
import contextlib
import json
import math
import os
import signal
import typing

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import toyviz
from toyviz.engine.config import Config, _dotted_fields, _get_dotted, parse_assignment, set_dotted
from toyviz.engine.data import load_points_csv
from toyviz.engine.trainer import Trainer, TrainingDiverged

EXAMPLES = int(os.environ.get("TOYVIZ_FUZZ_EXAMPLES", "100"))
HARD_TIMEOUT = 60          # seconds per example, by signal.alarm: a hang fails the test
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="TOYVIZ_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=list(HealthCheck), database=None)
KEYS = _dotted_fields(Config)


class Hang(Exception):
    pass


@contextlib.contextmanager
def hard_timeout(seconds=HARD_TIMEOUT):
    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def tiny():
    return toyviz.presets.get("ring8").replace(**{
        "nets.g.width": 8, "nets.d.width": 8, "nets.e.width": 8, "optim.batch_size": 16, "viz.eval_samples": 50,
        "viz.metrics_every": 2, "viz.snapshot_every": 1, "optim.iters": 3})


def outcome(fn):
    """Run fn under the hard timeout: "ok", "refused" (one-line ValueError) or "diverged"; anything else fails."""
    with hard_timeout():
        try:
            fn()
            result = "ok"
        except ValueError as e:
            assert "\n" not in str(e) and str(e), f"not a one-line refusal: {str(e)[:500]!r}"
            result = "refused"
        except TrainingDiverged:
            result = "diverged"
    with contextlib.suppress(InvalidArgument):
        event(result)                  # pytest --hypothesis-show-statistics counts them (inside a Hypothesis test)
    return result


def train(cfg: Config, steps: int = 2):
    t = Trainer(cfg)
    for _ in range(steps):
        t.step()
    return t


# ---- values of every kind --------------------------------------------------------------------------------------
huge_ints = st.sampled_from([10**9, 10**18, 10**400, -10**400, 2**63, -1, 0, 1, 2, 3, 10**6])
odd_floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e48, -1e48, 1e-320, 0.0, -0.0])
scalars = st.none() | st.booleans() | huge_ints | st.integers(-5, 40) | odd_floats | st.floats(-3, 3) | st.text(
    max_size=12) | st.sampled_from(["", "ring", "grid", "mixture", "points", "relu", "tanh", "all", "cuda", "mps",
                                    "cpu", "é✓", "linear", "fake", "interp", "l1", "wgan", "hinge", "lsgan"])
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5),
                                                                                          inner, max_size=3),
                      max_leaves=12)
def plausible(key: str):
    """Values of the field's own type near the tiny config's (so that some examples train)."""
    v = _get_dotted(tiny(), key)
    if isinstance(v, bool):
        return st.booleans()
    if isinstance(v, int):
        return st.integers(0, 2 * v + 3)
    if isinstance(v, float):
        return st.floats(0, 2 * abs(v) + 1)
    if isinstance(v, str):
        parent, _, leaf = key.rpartition(".")
        cls = type(_get_dotted(tiny(), parent)) if parent else Config
        args = [a for a in typing.get_args(typing.get_type_hints(cls)[leaf]) if isinstance(a, str)]
        return st.sampled_from(args) if args else st.just(v)
    return st.just(v)


overrides_of_every_kind = st.sampled_from(KEYS).flatmap(lambda k: st.tuples(st.just(k), plausible(k) | values))
deep = st.integers(1, 3000).map(lambda n: json.loads("[" * min(n, 900) + "]" * min(n, 900)))


@FUZZ
@given(st.lists(overrides_of_every_kind | st.tuples(st.sampled_from(KEYS), deep), max_size=3))
def test_fuzz_config_overrides(overrides):
    def run():
        cfg = tiny().replace(**dict(overrides)).validate()
        train(cfg)
    outcome(run)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KEYS), st.text(max_size=30) | st.sampled_from(
    ["1e999", "9" * 400, "-9" * 5000, "[" * 5000, "NaN", "Infinity", "{}", "[]", "null", "1_000", "0x10"])),
    max_size=3))
def test_fuzz_set_options(assignments):
    def run():
        overrides = dict(parse_assignment(f"{k}={v}") for k, v in assignments)
        train(tiny().replace(**overrides).validate())
    outcome(run)


number_text = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-10**6, 10**6).map(
    str), st.sampled_from(["1,5", "1_0", "", " ", "x", "y", "1e999", "-0", "+3", "٣", "１"]), st.text(max_size=6))
rows = st.lists(st.lists(number_text, min_size=0, max_size=4).map(lambda cells: cells), max_size=8)
csv_texts = st.tuples(rows, st.sampled_from([",", ";", "\t"]), st.sampled_from(["\n", "\r\n"])).map(
    lambda t: t[2].join(t[1].join(r) for r in t[0])) | st.text(max_size=80)


@FUZZ
@given(csv_texts)
def test_fuzz_csv_uploads(text):
    def run():
        pts = load_points_csv(text)
        assert pts.ndim == 2 and pts.shape[1] == 2 and len(pts) >= 1 and bool((abs(pts) < math.inf).all())
        train(tiny().replace(**{"data.kind": "points", "data.points": pts.tolist()}))
    outcome(run)


RUN_FILES = ["checkpoint.pt", "config.json", "stats.jsonl"]


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=3) | values | st.binary(max_size=60).map(
    lambda b: b.decode("latin-1")))
def test_fuzz_config_json_files(tmp_path_factory, content):
    """A config.json trained by `train_run` (at most 3 steps): a complete run folder, or none at all."""
    from toyviz.experiments.runs import train_run
    root = tmp_path_factory.mktemp("cfg")
    path, out = root / "config.json", root / "run"
    if isinstance(content, dict) and all(k in KEYS for k in content):
        d = tiny().to_dict()
        for key, value in content.items():
            set_dotted(d, key, value)
        text = json.dumps(d)
    else:
        text = content if isinstance(content, str) else json.dumps(content)
    path.write_text(text, encoding="utf-8", errors="surrogatepass")

    def run():
        cfg = Config.from_json(path).validate()
        train_run(cfg.replace(**{"optim.iters": min(cfg.optim.iters, 3)}), out, quiet=True)
    result = outcome(run)
    assert sorted(p.name for p in root.iterdir()) == (["config.json", "run"] if result != "refused" else
                                                      ["config.json"])
    if result != "refused":
        assert sorted(p.name for p in out.iterdir()) == RUN_FILES


def _checkpoint():
    t = train(tiny(), 2)
    return t.state_dict()


odd_content = st.recursive(
    scalars | st.sampled_from([torch.zeros(3), torch.full((2, 2), float("nan")), torch.zeros(0), torch.ones(1, 8)]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["format", "config", "iteration", "nets", "optims", "rngs", "reg_state",
                                           "history", "half_step", "snapshots", "snapshot_every", "extra"]),
                          st.booleans(), odd_content), max_size=3), st.booleans())
def test_fuzz_checkpoint_files(tmp_path_factory, edits, whole):
    path = tmp_path_factory.mktemp("ck") / "checkpoint.pt"
    ck = _checkpoint()
    for key, drop, value in edits:
        if drop:
            ck.pop(key, None)
        else:
            ck[key] = value
    if whole and edits:
        ck = {k: v for k, _, v in edits}
    torch.save(ck, path)

    def run():
        t = Trainer.load(path)
        for _ in range(2):
            t.step()
    outcome(run)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@FUZZ
@given(st.binary(max_size=200) | st.sampled_from([b"", b"PK\x03\x04", b"\x80\x02}q\x00."]))
def test_fuzz_checkpoint_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("ck") / "checkpoint.pt"
    path.write_bytes(data)
    assert outcome(lambda: Trainer.load(path)) == "refused"


def test_a_checkpoint_holding_code_is_refused_in_one_line(tmp_path):
    torch.save({"format": "toyviz-checkpoint-1", "module": torch.nn.Linear(1, 1)}, tmp_path / "c.pt")
    assert outcome(lambda: Trainer.load(tmp_path / "c.pt")) == "refused"


def test_no_folder_after_a_refusal(tmp_path):
    from toyviz.experiments.runs import train_run
    with pytest.raises(ValueError):
        train_run(tiny().replace(**{"optim.batch_size": 10**9}), tmp_path / "run", quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_random_train_command_lines(monkeypatch):
    """A few cases of issue #20's random trial (tests/set_trial.py: `train --set key=value` command lines run
    in-process): each runs, is refused in one line or diverges in one line; no traceback, no hang.
    `python tests/set_trial.py --cases 1000` is the whole trial."""
    from set_trial import trial
    monkeypatch.setenv("TOYVIZ_MEMORY_CAP", "2G")
    found = []
    n = min(EXAMPLES, 6)
    counts = trial(n, seed=20, bound=HARD_TIMEOUT, report=found.append)
    assert found == [] and sum(counts.values()) == n and counts["refused"] >= 1
