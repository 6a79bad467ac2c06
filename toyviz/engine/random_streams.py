"""The run's random streams: one seeded `torch.Generator` per purpose, so that what one part of training draws
never shifts another part's numbers, and a checkpoint can restore them all.

Training streams (saved in checkpoints): `data` (real batches), `noise` (G's latent batches), `reg` (regularizer
randomness: interpolates, penalties), the i-th seeded with seed·1000 + i. Fixed streams, made afresh from the seed
whenever asked for: evaluation noise, samples, held-out labelled points, labelled subsets (`FIXED`).

The generators live on the CPU by default: the draws are then the same on every device, and a run on a GPU sees
the numbers a CPU run sees (its tensors are moved after drawing); every run made with these CPU streams stays
bit-identical to the earlier releases. A step captured as a CUDA graph (`optim.cuda_graph`) draws inside the graph,
so its training streams live on the run's device (`RandomStreams(seed, device)`): same seeds, but a CUDA generator
draws other numbers than a CPU one. On a CPU device they are the CPU streams above, so a graph-ready step run
eagerly on the CPU draws exactly what the ordinary step draws. Every draw site draws on its generator's device
(`device=generator.device`) and moves the result to the run's device (`to_run_device`), a no-op when they agree.
"""
from __future__ import annotations

import torch

TRAINING = ("data", "noise", "reg")
FIXED = {"eval": 7, "sample": 11, "held_out": 13, "labelled": 17}    # seed·1000 + offset


def to_run_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A draw moved to the run's device. From the CPU to CUDA through pinned memory without blocking: an ordinary
    copy from pageable memory waits for every kernel queued before it, so each draw of an eager step would stall
    the host. The same values either way; a no-op when the draw is already there."""
    if x.device == device:
        return x
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def seeded(seed: int, device="cpu") -> torch.Generator:
    """A generator on `device` (the CPU by default) seeded with `seed`."""
    return torch.Generator(device=device).manual_seed(seed)


class RandomStreams:
    """`streams["data"]` is the data stream's generator; `state_dict()` / `load_state_dict()` for checkpoints;
    `fixed(name)` a fresh generator for one of the fixed purposes (always on the CPU). `device`: where the
    training streams live (the CPU but for a captured step's streams, module docstring)."""

    def __init__(self, seed: int, device="cpu"):
        self.seed = seed
        self.generators = {name: seeded(seed * 1000 + i, device) for i, name in enumerate(TRAINING)}

    def __getitem__(self, name: str) -> torch.Generator:
        return self.generators[name]

    def fixed(self, name: str) -> torch.Generator:
        return seeded(self.seed * 1000 + FIXED[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: g.get_state() for name, g in self.generators.items()}

    def load_state_dict(self, states: dict[str, torch.Tensor]) -> None:
        for name, state in states.items():
            g = self.generators[name]
            try:
                g.set_state(state)
            except RuntimeError:      # a CPU generator's state is kilobytes, a CUDA one's 16 bytes
                raise ValueError(f"random stream {name!r}: the saved state is not one of a {g.device.type} "
                                 f"generator (optim.cuda_graph runs draw on their device): resume on the device "
                                 f"and with the optim.cuda_graph the run was trained with") from None
