"""The toy trainer: explicit D phase(s) then G phase, regularizers from the registry, bounded snapshots, exact resume.

Seeds: one `torch.Generator` each for data, noise, regularizer randomness and evaluation noise; network init runs
under a forked global RNG seeded from the config, so two trainers with one seed are bit-identical.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from . import metrics
from .config import Config
from .data import make_data
from .losses import get_loss
from .nets import Discriminator, Generator
from .regularizers import REGISTRY, StepContext


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the weights and snapshots are those of the last finite step."""


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


class Trainer:
    """`step() -> dict[str, float]`, `run(n)`, `sample(n)`, `save(path)` / `Trainer.load(path)`.

    Snapshots of all nets' weights every `viz.snapshot_every` steps are kept in memory; when more than
    `viz.max_snapshots` accumulate, every second one is dropped and the interval doubles, so memory stays below
    max_snapshots × (size of the nets' weights) — about 55 MB for `ring8` at the default 200.
    """

    def __init__(self, cfg: Config):
        self.cfg = cfg.validate()
        self.device = torch.device(cfg.device)
        self.data = make_data(cfg.data)
        self.loss = get_loss(cfg.loss)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.nets: dict[str, torch.nn.Module] = {"G": Generator(cfg), "D": Discriminator(cfg)}
        for net in self.nets.values():
            net.to(self.device)
        o = cfg.optim
        self.optims = {
            "G": torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2)),
            "D": torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2)),
        }
        self.base_lr = {"G": o.lr_g, "D": o.lr_d}
        self.rngs = {name: _generator(cfg.seed * 1000 + i) for i, name in enumerate(("data", "noise", "reg"))}
        self.z_eval = torch.randn(cfg.viz.eval_samples, cfg.nets.latent_dim,
                                  generator=_generator(cfg.seed * 1000 + 7)).to(self.device)
        self.reg_state: dict[str, torch.Tensor] = {}
        self.iteration = 0
        self.history: list[dict[str, float]] = []
        self.snapshots: list[dict] = []
        self.snapshot_every = cfg.viz.snapshot_every
        self.take_snapshot()

    # ---- accessors ---------------------------------------------------------------------------------------------
    @property
    def G(self) -> Generator:
        return self.nets["G"]

    @property
    def D(self) -> Discriminator:
        return self.nets["D"]

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.nets.latent_dim, generator=self.rngs["noise"]).to(self.device)

    def real_batch(self, n: int) -> torch.Tensor:
        return self.data.sample(n, self.rngs["data"]).to(self.device)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """PacGAN: m consecutive samples concatenated into one D input, (N, 2) -> (N/m, 2m)."""
        return x.reshape(-1, 2 * self.cfg.nets.pack)

    # ---- one iteration -----------------------------------------------------------------------------------------
    def _set_lr(self) -> None:
        o = self.cfg.optim
        frac = min(self.iteration / max(o.iters, 1), 1.0) if o.lr_schedule == "linear" else 0.0
        for name, opt in self.optims.items():
            lr = self.base_lr[name] + (o.lr_floor - self.base_lr[name]) * frac
            for group in opt.param_groups:
                group["lr"] = lr

    def _apply_regularizers(self, player: str, ctx: StepContext, loss: torch.Tensor, stats: dict) -> torch.Tensor:
        for reg in REGISTRY:
            if reg.player != player:
                continue
            w = reg.weight(self.cfg, self.iteration)
            if w == 0:
                continue
            value, reg_stats = reg(ctx)
            loss = loss + w * value
            stats[f"reg/{reg.name}"] = value.item()
            stats[f"reg/{reg.name}/weighted"] = w * stats[f"reg/{reg.name}"]
            stats.update({f"reg/{reg.name}/{k}": v for k, v in reg_stats.items()})
        return loss

    def _check_finite(self, name: str, value: torch.Tensor) -> None:
        if not torch.isfinite(value):
            raise TrainingDiverged(f"{name} became {float(value)} at step {self.iteration + 1}; "
                                   f"the weights are those of step {self.iteration}")

    def d_phase(self, stats: dict) -> None:
        cfg, D, G, B = self.cfg, self.D, self.G, self.cfg.optim.batch_size
        real = self.real_batch(B)
        with torch.no_grad():
            fake = G(self.noise(B))
        real_out, real_feats = D.forward_features(self.pack(real))
        fake_out, fake_feats = D.forward_features(self.pack(fake))
        loss = self.loss.d(real_out, fake_out, cfg.reg.real_target)
        stats["loss/d"] = loss.item()
        ctx = StepContext(cfg, self.iteration, self.pack(real), self.pack(fake), D, G, self.rngs["reg"],
                          real_out, fake_out, real_feats, fake_feats, extra=self.reg_state)
        total = self._apply_regularizers("d", ctx, loss, stats)
        self._check_finite("loss/d", total)
        self.optims["D"].zero_grad(set_to_none=True)
        total.backward()
        self.optims["D"].step()

    def g_phase(self, stats: dict) -> None:
        cfg, D, G, B = self.cfg, self.D, self.G, self.cfg.optim.batch_size
        z = self.noise(B)
        fake = G(z)
        fake_out, fake_feats = D.forward_features(self.pack(fake))
        loss = self.loss.g(fake_out)
        stats["loss/g"] = loss.item()
        ctx = StepContext(cfg, self.iteration, None, self.pack(fake), D, G, self.rngs["reg"],
                          None, fake_out, None, fake_feats, z=z, extra=self.reg_state)
        total = self._apply_regularizers("g", ctx, loss, stats)
        self._check_finite("loss/g", total)
        self.optims["G"].zero_grad(set_to_none=True)
        total.backward()
        self.optims["G"].step()

    def step(self) -> dict[str, float]:
        """One iteration: `optim.d_steps` D updates, then one G update. Returns slash-keyed floats."""
        self._set_lr()
        stats: dict[str, float] = {}
        for _ in range(self.cfg.optim.d_steps):
            self.d_phase(stats)
        self.g_phase(stats)
        self.iteration += 1
        stats["step"] = self.iteration
        stats["lr/g"] = self.optims["G"].param_groups[0]["lr"]
        if self.iteration % self.cfg.viz.metrics_every == 0 or self.iteration == self.cfg.optim.iters:
            stats.update(self.evaluate())
        self.history.append(stats)
        if self.iteration % self.snapshot_every == 0:
            self.take_snapshot()
        return stats

    def run(self, n: int, progress_fn: Optional[Callable[[int, int, dict], None]] = None,
            abort_fn: Optional[Callable[[], bool]] = None) -> list[dict[str, float]]:
        """n steps; `progress_fn(done, n, stats)` after each; stops early when `abort_fn()` returns True."""
        out = []
        for i in range(n):
            if abort_fn is not None and abort_fn():
                break
            out.append(self.step())
            if progress_fn is not None:
                progress_fn(i + 1, n, out[-1])
        return out

    # ---- evaluation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def eval_samples(self) -> torch.Tensor:
        """G on the fixed evaluation noise: frames and metrics at different steps see the same z."""
        return self.G(self.z_eval)

    def sample(self, n: int, seed: Optional[int] = None) -> np.ndarray:
        """n samples of G as an (n, 2) array; the noise is seeded (`seed`, else the config's) and leaves the
        training noise stream untouched."""
        g = _generator(self.cfg.seed * 1000 + 11 if seed is None else seed)
        with torch.no_grad():
            z = torch.randn(n, self.cfg.nets.latent_dim, generator=g).to(self.device)
            return self.G(z).cpu().numpy()

    def evaluate(self) -> dict[str, float]:
        return metrics.evaluate(self)

    # ---- snapshots and checkpoints -----------------------------------------------------------------------------
    def state_of_nets(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                for name, net in self.nets.items()}

    def take_snapshot(self) -> None:
        if self.snapshots and self.snapshots[-1]["iteration"] == self.iteration:
            return
        self.snapshots.append({"iteration": self.iteration, "nets": self.state_of_nets()})
        if len(self.snapshots) > self.cfg.viz.max_snapshots:
            last = self.snapshots[-1]
            self.snapshots = self.snapshots[:-1:2] + [last]    # keep every second one (the first among them)
            self.snapshot_every *= 2

    def load_snapshot(self, index: int) -> None:
        """Put snapshot `index`'s weights into the nets (to re-render a past frame; training state untouched)."""
        for name, sd in self.snapshots[index]["nets"].items():
            self.nets[name].load_state_dict(sd)

    def state_dict(self) -> dict:
        return {
            "format": "toyviz-checkpoint-1",
            "config": self.cfg.to_dict(),
            "iteration": self.iteration,
            "nets": self.state_of_nets(),
            "optims": {k: o.state_dict() for k, o in self.optims.items()},
            "rngs": {k: g.get_state() for k, g in self.rngs.items()},
            "reg_state": self.reg_state,
            "history": self.history,
            "snapshots": self.snapshots,
            "snapshot_every": self.snapshot_every,
        }

    def save(self, path) -> None:
        from .runfolder import atomic_torch_save
        atomic_torch_save(self.state_dict(), path)

    @classmethod
    def load(cls, path, device: Optional[str] = None, expect: Optional[Config] = None) -> "Trainer":
        """Rebuild from a checkpoint (state dicts + config, `weights_only=True`). With `expect`, refuse a
        checkpoint whose networks differ from that config's."""
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"{path}: not a toyviz checkpoint ({type(e).__name__}: {str(e)[:120]})") from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != "toyviz-checkpoint-1":
            raise ValueError(f"{path}: not a toyviz checkpoint")
        cfg = Config.from_dict(ckpt["config"])
        if device is not None:
            cfg.device = device
        if expect is not None and cfg.nets != expect.nets:
            raise ValueError("the checkpoint's networks differ from the current configuration's "
                             "(width, depth, activation or D options)")
        t = cls(cfg)
        t.load_state_dict(ckpt)
        return t

    def load_state_dict(self, ckpt: dict) -> None:
        for name, sd in ckpt["nets"].items():
            self.nets[name].load_state_dict(sd)
        for name, sd in ckpt["optims"].items():
            self.optims[name].load_state_dict(sd)
        for name, state in ckpt["rngs"].items():
            self.rngs[name].set_state(state)
        self.reg_state = {k: v.to(self.device) for k, v in ckpt["reg_state"].items()}
        self.iteration = ckpt["iteration"]
        self.history = list(ckpt["history"])
        self.snapshots = list(ckpt["snapshots"])
        self.snapshot_every = ckpt["snapshot_every"]
