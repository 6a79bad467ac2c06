"""toyviz.image.classifier: the metrics' digits classifier reaches ≥ 95% test accuracy; cached per run folder."""
import os

import torch

from toyviz.image.classifier import SmallCNN, accuracy, load_or_train
from toyviz.image.data import StackedDigits, load_digits


def test_digits_classifier_accuracy_and_cache(tmp_path):
    digits = load_digits(16)
    path = tmp_path / "classifier.pt"
    net, acc = load_or_train(digits, path)
    assert acc >= 0.95
    assert acc == accuracy(net, digits.test, digits.test_labels)
    stamp = os.path.getmtime(path)
    again, acc2 = load_or_train(StackedDigits(digits), path)          # stacked digits read with the same net
    assert acc2 == acc and os.path.getmtime(path) == stamp
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_any_size_is_pooled_to_16():
    net = SmallCNN(1, 10)
    assert net(torch.randn(2, 1, 64, 64)).shape == net(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    x = torch.randn(1, 1, 8, 8).repeat_interleave(2, 2).repeat_interleave(2, 3)        # 16×16 made of 2×2 blocks
    torch.testing.assert_close(net(x.repeat_interleave(2, 2).repeat_interleave(2, 3)), net(x))
