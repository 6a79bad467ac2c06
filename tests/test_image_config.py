"""toyviz.image.config: strict round trip through the toy's build_dataclass, dotted replace, validation messages."""
import json

import pytest

from toyviz.image.config import ImageConfig


def test_round_trip_through_json(tmp_path):
    cfg = ImageConfig().replace(**{"data.name": "stacked-digits", "reg.bre.weight": 1.0, "reg.bre.layers": [1, 2],
                                   "nets.arch": "equal"})
    cfg.to_json(tmp_path / "c.json")
    back = ImageConfig.from_json(tmp_path / "c.json")
    assert back == cfg
    assert back.reg.bre.layers == [1, 2] and back.nets.arch == "equal"


def test_unknown_key_names_the_path():
    with pytest.raises(ValueError, match=r"unknown config key reg\.bogus"):
        ImageConfig.from_dict({"reg": {"bogus": 1}})
    with pytest.raises(ValueError, match="unknown config key nets.depth"):
        ImageConfig().replace(**{"nets.depth": 3})


def test_wrong_type_and_literal_choices():
    with pytest.raises(ValueError, match=r"data.name must be one of 'digits', 'stacked-digits'"):
        ImageConfig.from_dict({"data": {"name": "imagenet"}})
    with pytest.raises(ValueError, match="optim.batch_size must be an integer"):
        ImageConfig.from_dict({"optim": {"batch_size": "64"}})


@pytest.mark.parametrize("overrides, message", [
    ({"data.image_size": 48}, "data.image_size must be one of 16, 28, 32, 64"),
    ({"data.name": "mnist"}, "data.path must name the folder holding the mnist files"),
    ({"loss": "wgan"}, "the wgan loss needs a Lipschitz control"),
    ({"reg.gp_weight": 10.0}, "reg.gp_weight needs a D without batch norm"),
    ({"reg.real_target": 0.9, "loss": "hinge"}, "has no meaning for the hinge loss"),
    ({"reg.semi_supervised": True, "data.name": "stacked-digits"}, "reg.semi_supervised needs a labelled data set"),
    ({"reg.feature_matching_replace": True}, "reg.feature_matching_replace .*needs reg.feature_matching > 0"),
    ({"device": "tpu"}, "device must be cpu, cuda, cuda:N or mps"),
])
def test_validate_messages(overrides, message):
    with pytest.raises(ValueError, match=message):
        ImageConfig().replace(**overrides).validate()


def test_defaults_are_the_reference_code_s():
    cfg = ImageConfig().validate()
    assert (cfg.optim.batch_size, cfg.nets.latent_dim, cfg.optim.lr_g, cfg.optim.lr_d) == (64, 100, 2e-4, 2e-4)
    assert (cfg.optim.beta1, cfg.optim.lr_schedule, cfg.optim.iters, cfg.optim.lr_floor) == (0.5, "linear", 40000, 1e-6)
    assert json.loads(json.dumps(cfg.to_dict()))["reg"]["bre"]["samples"] == ["fake", "interp"]


def test_image_sizes_and_memory_are_bounded(monkeypatch):
    with pytest.raises(ValueError, match=r"optim\.batch_size must lie in \[4, 65536\]"):
        ImageConfig().replace(**{"optim.batch_size": 10**9}).validate()
    monkeypatch.setenv("TOYVIZ_MEMORY_CAP", "1M")
    with pytest.raises(ValueError, match="more than the cap of 1.0 MB"):
        ImageConfig().validate()
