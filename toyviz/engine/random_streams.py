"""The run's random streams: one seeded `torch.Generator` per purpose, so that what one part of training draws
never shifts another part's numbers, and a checkpoint can restore them all.

Training streams (saved in checkpoints): `data` (real batches), `noise` (G's latent batches), `reg` (regularizer
randomness: interpolates, penalties), the i-th seeded with seed·1000 + i. Fixed streams, made afresh from the seed
whenever asked for: evaluation noise, samples, held-out labelled points, labelled subsets (`FIXED`).

The generators live on the CPU: the draws are then the same on every device, and a run on a GPU sees the numbers a
CPU run sees (its tensors are moved after drawing). A device-resident stream (for a step captured as a CUDA graph)
would draw other numbers; every run made with these CPU streams stays bit-identical to the earlier releases.
"""
from __future__ import annotations

import torch

TRAINING = ("data", "noise", "reg")
FIXED = {"eval": 7, "sample": 11, "held_out": 13, "labelled": 17}    # seed·1000 + offset


def seeded(seed: int) -> torch.Generator:
    """A CPU generator seeded with `seed`."""
    return torch.Generator().manual_seed(seed)


class RandomStreams:
    """`streams["data"]` is the data stream's generator; `state_dict()` / `load_state_dict()` for checkpoints;
    `fixed(name)` a fresh generator for one of the fixed purposes."""

    def __init__(self, seed: int):
        self.seed = seed
        self.generators = {name: seeded(seed * 1000 + i) for i, name in enumerate(TRAINING)}

    def __getitem__(self, name: str) -> torch.Generator:
        return self.generators[name]

    def fixed(self, name: str) -> torch.Generator:
        return seeded(self.seed * 1000 + FIXED[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: g.get_state() for name, g in self.generators.items()}

    def load_state_dict(self, states: dict[str, torch.Tensor]) -> None:
        for name, state in states.items():
            self.generators[name].set_state(state)
