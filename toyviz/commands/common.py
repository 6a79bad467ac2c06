"""What every subcommand shares: `UsageError` (one line on stderr, exit 2), the parser class that raises it, the
config options (--preset/--config/--set/--iters/--seed/--device) and `usage()`, which turns a library's
ValueError into a UsageError."""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Callable, TypeVar

from ..engine import presets
from ..engine.config import Config, ConfigRenamed, parse_assignment

T = TypeVar("T")

DIVERGED = 3          # the exit code of a run that diverged (2 is bad input)
DEFAULT_PRESET = "ring8"           # what --preset defaults to (None when not given, so --resume can refuse it)


class UsageError(Exception):
    """Bad input from the user: one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with errors raised as UsageError instead of printed with the usage block."""

    def error(self, message):
        raise UsageError(message)


def usage(fn: Callable[..., T], *a, **kw) -> T:
    """fn(*a, **kw), its ValueError (and OSError) turned into the command line's one-line UsageError."""
    try:
        return fn(*a, **kw)
    except (ValueError, OSError) as e:
        raise UsageError(str(e)) from None


def config_from_args(args) -> Config:
    """--preset or --config, then every --set key.path=value, then --iters/--seed/--device; validated."""
    def build() -> Config:
        cfg = (Config.from_json(args.config) if getattr(args, "config", None) else
               presets.get(getattr(args, "preset", None) or DEFAULT_PRESET))
        overrides = dict(parse_assignment(a) for a in (getattr(args, "set", None) or []))
        if getattr(args, "iters", None) is not None:
            overrides["optim.iters"] = args.iters
        if getattr(args, "seed", None) is not None:
            overrides["seed"] = args.seed
        if getattr(args, "device", None):
            overrides["device"] = args.device
        return cfg.replace(**overrides).validate()
    return usage(build)


def add_config_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help=f"a preset name (python -m toyviz presets; default {DEFAULT_PRESET})")
    src.add_argument("--config", help="a config.json to start from")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config field")
    p.add_argument("--iters", type=int, help="training steps (optim.iters)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cpu, cuda, cuda:N")


def show_notes(prog: str) -> None:
    """Library notes (a renamed config field) as one line each on stderr: `prog: note: ...`."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: note: {message}", file=sys.stderr)
    warnings.showwarning = show
    warnings.simplefilter("always", ConfigRenamed)
