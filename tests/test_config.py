import json

import pytest

import toyviz
from toyviz.engine.config import Config, parse_assignment


def test_round_trip_every_preset(tmp_path):
    for name in toyviz.presets.names():
        cfg = toyviz.presets.get(name)
        assert Config.from_dict(cfg.to_dict()) == cfg
        path = tmp_path / f"{name}.json"
        cfg.to_json(path)
        assert Config.from_json(path) == cfg


def test_unknown_key_names_the_field():
    d = Config().to_dict()
    d["optim"]["lrr"] = 1.0
    with pytest.raises(ValueError, match=r"optim\.lrr"):
        Config.from_dict(d)


@pytest.mark.parametrize("key,value,match", [
    ("optim.batch_size", "big", r"optim\.batch_size must be an integer"),
    ("loss", "wasserstein", r"loss must be one of 'ns', 'minimax'"),
    ("nets.d.activation", "gelu", r"nets\.d\.activation must be one of"),
    ("reg.bre.samples", ["fake", "noise"], r"reg\.bre\.samples\[1\]"),
    ("optim.lr_d", float("nan"), r"optim\.lr_d must be finite"),
    ("nets.g_vbn", 1, r"nets\.g_vbn must be true or false"),
])
def test_wrong_types_raise_naming_the_field(key, value, match):
    with pytest.raises(ValueError, match=match):
        Config().replace(**{key: value})


@pytest.mark.parametrize("overrides,match", [
    ({"nets.d.width": -3}, r"nets\.d: width and depth must be ≥ 1"),
    ({"optim.lr_g": 0.0}, r"optim\.lr_g and optim\.lr_d must be > 0"),
    ({"data.std": -0.1}, r"data\.std must be > 0"),
    ({"reg.bre.weight": 1.0, "optim.batch_size": 3}, r"too small for BRE's pair statistics"),
    ({"reg.bre.weight": 1.0, "reg.bre.layers": [7]}, r"D has 3 hidden layers"),
    ({"reg.bre.weight": 1.0, "nets.d.depth": 2}, r"needs a D with ≥ 3 hidden layers"),
    ({"viz.resolution": 8}, r"viz\.resolution must lie in \[16, 2048\]"),
    ({"viz.extent": [1, -1, 0, 1]}, r"viz\.extent"),
    ({"data.kind": "mixture"}, r"data\.centers"),
])
def test_validate_explains(overrides, match):
    cfg = toyviz.presets.get("ring8").replace(**overrides)
    with pytest.raises(ValueError, match=match):
        cfg.validate()


def test_replace_refuses_unknown_paths():
    with pytest.raises(ValueError, match=r"unknown config key reg\.bree"):
        Config().replace(**{"reg.bree.weight": 1})


@pytest.mark.parametrize("key,message", [
    ("optim.lr", "unknown config key optim.lr (did you mean optim.lr_g, optim.lr_d?)"),
    ("reg.bre.wieght", "unknown config key reg.bre.wieght (did you mean reg.bre.weight?)"),
    ("reg.bree.weight", "unknown config key reg.bree.weight (did you mean reg.bre.weight?)"),
])
def test_unknown_key_suggests_the_nearest_real_ones(key, message):
    with pytest.raises(ValueError) as e:
        Config().replace(**{key: 1})
    assert str(e.value) == message


def test_unknown_key_in_a_file_suggests_too_and_lists_when_nothing_is_near():
    d = Config().to_dict()
    d["reg"]["bre"]["wieght"] = 1.0
    with pytest.raises(ValueError, match=r"unknown config key reg\.bre\.wieght \(did you mean reg\.bre\.weight\?\)"):
        Config.from_dict(d)
    with pytest.raises(ValueError, match=r"unknown config key zzz \(allowed: data, device, loss"):
        Config().replace(zzz=1)


def test_parse_assignment_reads_json_values():
    assert parse_assignment("reg.bre.layers=[1,2]") == ("reg.bre.layers", [1, 2])
    assert parse_assignment("loss=hinge") == ("loss", "hinge")
    assert parse_assignment("optim.lr_d=2e-4") == ("optim.lr_d", 2e-4)
    with pytest.raises(ValueError, match="key.path=value"):
        parse_assignment("oops")


def test_presets_listed_and_unknown_preset():
    for name in ("ring8", "grid25", "bre-toy", "ring8-bre", "grid25-bre", "bre-toy-bre"):
        assert name in toyviz.presets.names()
    assert toyviz.presets.get("bre-toy-bre").reg.bre.layers == [1]
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        toyviz.presets.get("nope")


def test_config_json_is_plain(tmp_path):
    toyviz.presets.get("grid25").to_json(tmp_path / "c.json")
    d = json.loads((tmp_path / "c.json").read_text())
    assert d["data"]["kind"] == "grid" and d["preset"] == "grid25"
