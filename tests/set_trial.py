"""The random trial of issue #20: N random `python -m toyviz train --set key=value` command lines (real keys of the
config tree, 1–3 each, odd values and plausible ones, on a random preset, `--iters 20`), run in-process with a time
bound each, counted by outcome: ran (exit 0), refused (exit 2, one line), diverged (exit 3, one line), traceback
(any other exception, exit code or a message of more than one line) and hang (past the time bound).

    nice -n 5 python tests/set_trial.py --cases 1000 [--seed 0] [--bound 60]

`tests/test_fuzz.py::test_random_train_command_lines` runs a few cases of it in CI. The memory cap is set to 2 GB
(TOYVIZ_MEMORY_CAP) unless given, so that a case the cap would refuse on a big machine is refused here too.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import sys
import tempfile
import time

ODD = ["0", "-1", "1", "2", "3", "0.5", "-0.0", "1e9", "1e18", "1e400", "9" * 400, "-" + "9" * 40, "NaN",
       "Infinity", "-Infinity", "null", "true", "false", '""', '"x"', '"é✓"', '"cuda"', '"mps"', '"all"', "[]", "{}",
       "[1,2]", "[[[[1]]]]", "[" * 2000 + "]" * 2000, "1_000", "0x10", "1e-320", "65536", "4097", "1e6", "1e48",
       '"relu"', '"linear"', '["fake","real"]', "[0]", "[-1]", '{"a":1}', "\"\\u0000\""]


class Hang(Exception):
    pass


def case(rng: random.Random) -> list[str]:
    """One command line: `train --preset P --set k=v ... --iters 20` (without --out)."""
    from toyviz.engine import presets
    from toyviz.engine.config import Config, _dotted_fields, _get_dotted
    keys = _dotted_fields(Config)
    preset = rng.choice(presets.names())
    base = presets.get(preset)
    argv = ["train", "--preset", preset]
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(keys)
        if rng.random() < 0.3:                        # near the preset's own value: some cases train
            v = _get_dotted(base, key)
            if isinstance(v, bool):
                text = json.dumps(not v)
            elif isinstance(v, int):
                text = str(rng.randint(0, 2 * v + 3))
            elif isinstance(v, float):
                text = repr(rng.uniform(0, 2 * abs(v) + 1))
            else:
                text = json.dumps(v)
        else:
            text = rng.choice(ODD)
        argv += ["--set", f"{key}={text}"]
    return argv + ["--iters", "20", "--threads", "1"]


def run_case(argv: list[str], bound: int) -> tuple[str, str]:
    """(outcome, detail) of one command line run in-process, its output captured."""
    from toyviz.commands.cli import main

    def alarm(signum, frame):
        raise Hang(f"no answer within {bound} s")
    err = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="toyviz-trial-") as out:
        old = signal.signal(signal.SIGALRM, alarm)
        signal.alarm(bound)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main([*argv, "--out", os.path.join(out, "run")])
        except Hang as e:
            return "hang", str(e)
        except BaseException as e:                   # what escaped the command line: a traceback for the user
            return "traceback", f"{type(e).__name__}: {str(e)[:200]}"
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip() and ": note: " not in ln and "%|" not in ln]
    name = {0: "ran", 2: "refused", 3: "diverged"}.get(code)
    if name is None or (code != 0 and len(lines) != 1):
        return "traceback", f"exit {code}: {' | '.join(lines)[:300]}"
    return name, lines[0] if lines else ""


def trial(cases: int, seed: int = 0, bound: int = 60, report=print, every: int = 0) -> dict[str, int]:
    """Run `cases` random command lines; returns the count of each outcome (tracebacks and hangs reported, and the
    counts so far every `every` cases when it is not 0)."""
    rng = random.Random(seed)
    counts = {k: 0 for k in ("ran", "refused", "diverged", "traceback", "hang")}
    for i in range(cases):
        argv = case(rng)
        t0 = time.perf_counter()
        outcome, detail = run_case(argv, bound)
        counts[outcome] += 1
        if outcome in ("traceback", "hang"):
            report(f"case {i}: {outcome} after {time.perf_counter() - t0:.1f} s: {' '.join(argv)[:400]}\n    {detail}")
        if every and (i + 1) % every == 0:
            report(f"{i + 1} cases: {json.dumps(counts)}")
    return counts


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bound", type=int, default=60, help="seconds a case may take before it counts as a hang")
    a = p.parse_args()
    os.environ.setdefault("TOYVIZ_MEMORY_CAP", "2G")
    import torch
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    result = trial(a.cases, a.seed, a.bound, report=lambda line: print(line, flush=True), every=50)
    print(json.dumps(result), f"in {time.perf_counter() - t0:.0f} s", flush=True)
    sys.exit(1 if result["traceback"] or result["hang"] else 0)
