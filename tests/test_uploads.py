"""The page's upload limits: one table, each upload refused over its limit with the limit named, and
`.streamlit/config.toml`'s server.maxUploadSize equal to the largest upload limit."""
import json
from pathlib import Path

import pytest
import tomllib

from toyviz.page.session import Session
from toyviz.page.uploads import LIMITS, MAX_UPLOAD_MB, MB, check_size

ROOT = Path(__file__).resolve().parents[1]


def test_streamlit_upload_limit_matches_the_table():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["maxUploadSize"] == MAX_UPLOAD_MB == LIMITS["checkpoint"][0] // MB


@pytest.mark.parametrize("kind,load,name", [("csv", "load_points_bytes", "points CSV"),
                                            ("config", "load_config_bytes", "config file"),
                                            ("checkpoint", "load_checkpoint_bytes", "checkpoint")])
def test_every_upload_is_refused_over_its_limit_and_the_run_kept(tiny_cfg, kind, load, name):
    s = Session(tiny_cfg)
    s.step(2)
    limit = LIMITS[kind][0]
    with pytest.raises(ValueError, match=rf"the {name} is [\d.]+ MB; at most {limit / MB:g} MB"):
        getattr(s, load)(b" " * (limit + 1))
    assert s.trainer.iteration == 2


def test_a_config_cannot_name_a_file_to_read(tiny_cfg):
    """The toy's config has no path fields: a config naming one is refused as an unknown key, never followed."""
    s = Session(tiny_cfg)
    for key in ("data.path", "path", "data.csv"):
        doc = tiny_cfg.to_dict()
        section, _, field = key.rpartition(".")
        (doc[section] if section else doc)[field] = "/etc/passwd"
        with pytest.raises(ValueError, match="unknown config key"):
            s.load_config_bytes(json.dumps(doc).encode())
    with pytest.raises(ValueError, match="at most 20 MB"):
        check_size("csv", 21 * MB)


def test_a_deeply_nested_config_upload_is_refused_in_one_line(tiny_cfg):
    s = Session(tiny_cfg)
    for data in (b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"9" * 5000):
        with pytest.raises(ValueError) as e:
            s.load_config_bytes(data)
        assert str(e.value).startswith("the config file: ") and "\n" not in str(e.value)
