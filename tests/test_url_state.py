"""A run in the page's URL (toyviz.page.url_state): the query round-trips to the same config, holds only what
differs from the preset, leaves a cloud's points out, and a bad link is a ValueError naming the parameter."""
import pytest

from toyviz.engine import presets
from toyviz.page.url_state import config_of_query, query_of


def test_round_trip_holds_only_the_changes():
    cfg = presets.get("ring8").replace(**{"seed": 3, "reg.bre.weight": 1.0, "data.kind": "mixture",
                                          "data.centers": [[0.0, 0.0], [1.0, 1.0]]}).validate()
    query = query_of(cfg)
    assert query == {"preset": "ring8", "seed": "3", "data.kind": "mixture", "data.centers": "[[0.0,0.0],[1.0,1.0]]",
                     "reg.bre.weight": "1.0"}
    assert config_of_query(query) == cfg
    assert query_of(presets.get("bre-toy")) == {"preset": "bre-toy", "seed": "0"}


def test_a_cloud_stays_out_of_the_link():
    cfg = presets.get("ring8").replace(**{"data.kind": "points", "data.points": [[0.0, 0.0], [1.0, 1.0]]})
    query = query_of(cfg)
    assert "data.points" not in query and "data.kind" not in query
    assert config_of_query(query).data.kind == "ring"


def test_no_run_in_the_query():
    assert config_of_query({}) is None and config_of_query({"width": "480", "resolution": "64"}) is None


@pytest.mark.parametrize("query, message", [
    ({"preset": "nope"}, "preset='nope' in the link is not a preset"),
    ({"seed": "x"}, "seed must be an integer"),
    ({"optim.lr_g": "-1"}, "optim.lr_g"),
    ({"reg.bogus": "1"}, "unknown config key reg.bogus"),
    ({"data.points": "[[0,0]]"}, "data.points cannot be set from a link"),
])
def test_bad_links_name_the_parameter(query, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        config_of_query(query)
