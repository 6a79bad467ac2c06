"""The configuration form's groups, labels, help and advanced set (toyviz.page.config_form): every field of every
preset lands in one of the six groups with a worded label, and its help carries the meaning and the dotted key."""
import pytest

from toyviz.engine import presets
from toyviz.page.config_form import GROUPS, group_of, help_texts, is_advanced, label_of
from toyviz.page.session import config_fields


@pytest.mark.parametrize("path, group", [("data.std", "Data"), ("nets.g.width", "Generator"),
                                         ("nets.latent_dim", "Generator"), ("nets.d.depth", "Discriminator"),
                                         ("nets.pack", "Discriminator"), ("nets.e.width", "Regularizers"),
                                         ("loss", "Training"), ("seed", "Training"), ("optim.lr_g", "Training"),
                                         ("reg.bre.weight", "Regularizers"), ("viz.extent", "View")])
def test_groups(path, group):
    assert group_of(path) == group


def test_every_field_has_a_group_a_worded_label_and_help():
    for name in ("ring8", "ring8-bre", "ring8-modereg", "ring8-semi"):
        cfg = presets.get(name)
        tips = help_texts(cfg)
        for f in config_fields(cfg):
            assert group_of(f.path) in GROUPS
            assert "." not in label_of(f.path) or "…" in label_of(f.path), f.path      # words, not the key
            assert f"`{f.path}`" in tips[f.path] and len(tips[f.path].split("\n\n")[0]) > 3, f.path


def test_labels_and_advanced():
    assert label_of("nets.e.depth") == "E (encoder): hidden layers"
    assert label_of("optim.lr_d") == "D's learning rate (Adam step size)"
    assert is_advanced("nets.g.slope") and is_advanced("nets.e.width") and is_advanced("optim.beta2")
    assert not is_advanced("reg.bre.weight") and not is_advanced("data.std") and not is_advanced("nets.d.width")
