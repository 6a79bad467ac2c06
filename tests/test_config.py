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
    ({"viz.resolution": 8}, r"viz\.resolution must lie in \[16, 4096\]"),
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


@pytest.mark.parametrize("key,value,match", [
    ("nets.minibatch_kernels", 10**9, r"nets\.minibatch_kernels must lie in \[0, 1024\]"),
    ("data.n_modes", 10**9, r"data\.n_modes must lie in \[1, 10000\]"),
    ("nets.pack", 0, r"nets\.pack must be ≥ 1"),
    ("data.radius", 1e48, r"data\.radius must lie in \[-10000, 10000\]"),
    ("optim.d_steps", 10**6, r"optim\.d_steps must lie in \[1, 100\]"),
    ("reg.unrolled_steps", 500, r"reg\.unrolled_steps must lie in \[0, 100\]"),
    ("viz.extent", [-1e9, 1, -1, 1], r"viz\.extent each must lie in"),
    ("optim.lr_g", 10**400, r"optim\.lr_g is too large for a number \(got about 10\^400\)"),
])
def test_sizes_are_bounded_before_anything_is_allocated(key, value, match):
    with pytest.raises(ValueError, match=match) as e:
        toyviz.presets.get("ring8").replace(**{key: value}).validate()
    assert "\n" not in str(e.value)


def test_limits_are_one_table_generous_for_the_published_protocols():
    from toyviz.engine.config import LIMITS
    assert LIMITS["optim.iters"][1] >= 400_000 and LIMITS["nets.d.width"][1] >= 400
    toyviz.presets.get("ring8").replace(**{"optim.iters": 400_000, "nets.d.width": 400, "nets.g.width": 400}).validate()


def test_memory_cap_refuses_with_estimate_and_cap(monkeypatch):
    from toyviz.engine.config import _parse_bytes, estimate_memory
    cfg = toyviz.presets.get("ring8")
    assert _parse_bytes("8G") == 8 * 2**30 and _parse_bytes("512M") == 512 * 2**20 and _parse_bytes("1000") == 1000
    monkeypatch.setenv("TOYVIZ_MEMORY_CAP", "1M")
    with pytest.raises(ValueError, match=r"would need about .* MB of memory .* more than the cap of 1\.0 MB"):
        cfg.validate()
    monkeypatch.setenv("TOYVIZ_MEMORY_CAP", str(int(estimate_memory(cfg)) + 1))
    cfg.validate()
    monkeypatch.setenv("TOYVIZ_MEMORY_CAP", "lots")
    with pytest.raises(ValueError, match="TOYVIZ_MEMORY_CAP"):
        cfg.validate()


def test_parser_turns_overflow_and_recursion_into_one_line(tmp_path):
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_assignment("optim.lr_g=" + "[" * 100_000 + "]" * 100_000)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        Config.from_json(tmp_path / "deep.json")


def test_absent_devices_and_gp_with_minibatch_are_refused_at_validate():
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            Config(device="cuda").validate()
    with pytest.raises(ValueError, match="minibatch discrimination"):
        toyviz.presets.get("ring8").replace(**{"reg.gp_weight": 10.0, "nets.minibatch_kernels": 5}).validate()


def test_unrolled_d_with_minibatch_discrimination_is_refused_at_validate():
    """Found by the random trial (tests/set_trial.py): it raised NotImplementedError from cdist's backward at step 1."""
    for preset in ("ring8-mbd", "ring8-unrolled", "ring8-modereg"):
        with pytest.raises(ValueError, match="reg.unrolled_steps cannot differentiate twice through minibatch"):
            toyviz.presets.get(preset).replace(**{"nets.minibatch_kernels": 2, "reg.unrolled_steps": 2}).validate()
    toyviz.presets.get("ring8-unrolled").validate()
    toyviz.presets.get("ring8-mbd").validate()
