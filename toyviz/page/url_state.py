"""A run in the page's URL, free of streamlit: the preset, the seed and every option that differs from the preset,
one query parameter each (`?preset=ring8&seed=3&reg.bre.weight=1`), so a lesson can be bookmarked and shared, and
the way back from such a URL to a validated config. Values are compact JSON (a bare word stays a string, as on the
command line's `--set`). A bad value is a `ValueError` naming the parameter.
"""
from __future__ import annotations

import json
from typing import Mapping, Optional

from ..engine import presets
from ..engine.config import Config, describe, parse_assignment

VIEW_KEYS = ("width", "resolution")         # the picture's own parameters: the page reads them, not the config
NOT_IN_URL = ("preset", "seed", "device", "data.points")   # a drawn or uploaded cloud is too long for a link
MAX_VALUE = 2000                            # characters: a longer value (e.g. many centres) is left out


def _base(preset: str) -> Config:
    return presets.get(preset) if preset in presets.names() else Config()


def _leaves(cfg: Config) -> dict:
    return {key: value for key, value, _ in describe(cfg)}


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def query_of(cfg: Config) -> dict[str, str]:
    """The query parameters of `cfg`: preset, seed, then each option that differs from the preset's value."""
    base, now = _leaves(_base(cfg.preset)), _leaves(cfg)
    out = {"preset": cfg.preset, "seed": str(cfg.seed)}
    skip = NOT_IN_URL + (("data.kind",) if cfg.data.kind == "points" else ())    # a link keeps the preset's data
    for key, value in now.items():
        if key not in skip and value != base.get(key) and len(_text(value)) <= MAX_VALUE:
            out[key] = _text(value)
    return out


def config_of_query(query: Mapping[str, str]) -> Optional[Config]:
    """The config a URL's query describes, validated; None when it names no run (no preset, seed or option).
    ValueError naming the parameter for an unknown preset, key or a bad value."""
    options = {k: v for k, v in query.items() if k not in VIEW_KEYS}
    if not options:
        return None
    preset = options.pop("preset", "ring8")
    if preset not in presets.names():
        raise ValueError(f"preset={preset!r} in the link is not a preset (choose from: {', '.join(presets.names())})")
    overrides = {}
    for key, text in options.items():
        name, value = parse_assignment(f"{key}={text}")
        if name in ("preset", "device", "data.points"):
            raise ValueError(f"{name} cannot be set from a link")
        overrides[name] = value
    try:
        return presets.get(preset).replace(**overrides).validate()
    except (ValueError, TypeError) as e:
        raise ValueError(f"the link's options: {e}") from None
