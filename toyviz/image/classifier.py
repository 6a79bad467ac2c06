"""The small CNN that the metrics read generated images with: trained on `digits` (or MNIST), cached in the run
folder as `classifier.pt`; the same net, with one output, is the noisy third-party discriminator of `metrics`.

Inputs are average-pooled to 16×16 first (the digits hold 8×8 of information), so training costs the same at every
image size: well under a minute on one CPU thread.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.atomic_files import atomic_torch_save
from .data import ImageData, to_float

FORMAT = "toyviz-image-classifier-1"


class SmallCNN(nn.Module):
    """(N, C, S, S) -> pool to 16×16 -> conv 3×3 (16) -> pool -> conv 3×3 (32) -> pool -> linear (out_dim)."""

    def __init__(self, channels: int = 1, out_dim: int = 10, width: int = 16):
        super().__init__()
        self.channels, self.out_dim, self.width = channels, out_dim, width
        self.c1 = nn.Conv2d(channels, width, 3, padding=1)
        self.c2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * 16, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 16:
            x = F.adaptive_avg_pool2d(x, 16)
        h = F.max_pool2d(F.relu(self.c1(x)), 2)                           # (N, w, 8, 8)
        h = F.max_pool2d(F.relu(self.c2(h)), 2)                           # (N, 2w, 4, 4)
        return self.fc(h.flatten(1))


@torch.no_grad()
def predict_proba(net: nn.Module, x: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """p(y | x) (N, K) in chunks, eval mode."""
    net.eval()
    dev = next(net.parameters()).device
    return torch.cat([F.softmax(net(x[i:i + chunk].to(dev)), 1).cpu() for i in range(0, len(x), chunk)])


def accuracy(net: nn.Module, images_uint8: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predict_proba(net, to_float(images_uint8)).argmax(1) == labels).float().mean())


def train_classifier(data: ImageData, *, epochs: int = 12, batch_size: int = 64, lr: float = 3e-3,
                     seed: int = 0, max_train: int = 20000) -> tuple[SmallCNN, float]:
    """Train on the (single-channel) labelled training split with ±1-pixel shifts; returns (net, test accuracy)."""
    if data.train_labels is None or data.n_classes != 10:
        raise ValueError(f"the metrics classifier needs 10-class labelled digits (got data set {data.name!r})")
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallCNN(data.train.shape[1], 10)
    x_all, y_all = data.train[:max_train], data.train_labels[:max_train]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * max(1, len(x_all) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(x_all), (batch_size,), generator=g)
        x = F.adaptive_avg_pool2d(to_float(x_all[idx]), 16) if x_all.shape[-1] != 16 else to_float(x_all[idx])
        dx, dy = torch.randint(-1, 2, (2,), generator=g).tolist()
        x = torch.roll(x, (dy, dx), (2, 3))
        loss = F.cross_entropy(net(x), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net, accuracy(net, data.test, data.test_labels)


def load_or_train(data: ImageData, path=None) -> tuple[SmallCNN, float]:
    """The classifier for `data` (digits for stacked digits: one channel at a time), from `path` when it holds
    one trained on the same data set and size, else trained and (when `path` is given) saved there."""
    base = getattr(data, "digits", data)
    key = {"data": base.name, "image_size": base.image_size, "n_train": len(base.train)}
    if path is not None and os.path.exists(path):
        ck = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(ck, dict) and ck.get("format") == FORMAT and ck.get("key") == key:
            net = SmallCNN(base.train.shape[1], 10)
            net.load_state_dict(ck["state"])
            return net.eval(), ck["test_accuracy"]
    net, acc = train_classifier(base)
    if path is not None:
        atomic_torch_save({"format": FORMAT, "key": key, "state": net.state_dict(), "test_accuracy": acc}, path)
    return net.eval(), acc
