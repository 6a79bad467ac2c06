"""The toy trainer: 2D mixtures, MLP nets, the phases of `phases.PhasedTrainer` (D half, G half, each callable
alone), bounded snapshots for re-rendering any frame, exact resume.

Seeds: the run's `RandomStreams` (data, noise, regularizer randomness; fixed evaluation noise); network init runs
under a forked global RNG seeded from the config, so two trainers with one seed are bit-identical; `SEEDED_INIT`,
a process-wide lock, keeps two threads building trainers at once (two page sessions) from drawing from that one
global RNG in turn.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.func import functional_call

from .atomic_files import atomic_torch_save
from .config import Config
from .coverage import mode_coverage
from .data import make_data
from .graph_step import GraphStep, make_adam
from .losses import get_loss, k_plus_one_d_loss, k_plus_one_real_logit
from .nets import Discriminator, Encoder, Generator, KPlusOneDiscriminator, eval_mode
from .phases import PhasedTrainer, TrainingDiverged, read_checkpoint
from .random_streams import RandomStreams, to_run_device

__all__ = ["Callback", "Trainer", "TrainingDiverged"]

HELD_OUT = 2000     # labelled points the K+1 classifier's accuracy is measured on
FORMAT = "toyviz-checkpoint-1"
SEEDED_INIT = threading.Lock()      # held around every seeded net construction (both trainers): one global RNG


class Callback:
    """What the command layer and the page add to a trainer, so the engine never imports raster or drawing code.

    `evaluate(trainer)` returns extra numbers merged into the stats of each evaluation step (after coverage);
    `after_step(trainer, stats)` sees every finished step (logging, timing, pictures). Both default to nothing."""

    def evaluate(self, trainer: "Trainer") -> dict[str, float]:
        return {}

    def after_step(self, trainer: "Trainer", stats: dict[str, float]) -> None:
        pass


def unrolled_adam(loss_of: Callable[[list[torch.Tensor]], torch.Tensor], params: list[torch.Tensor],
                  exp_avg: list[torch.Tensor], exp_avg_sq: list[torch.Tensor], step: float, lr: float,
                  betas: tuple[float, float], eps: float, k: int) -> list[torch.Tensor]:
    """k differentiable Adam steps on `loss_of(weights)` from `params` and Adam's moments after `step` steps
    (Metz et al. 2017, unrolled GAN): m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², t ← t + 1,
    w ← w − lr·(m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε). Returns the k-th weights, whose graph reaches whatever the
    loss reads besides the weights (G's fake batch). The moments given are not changed."""
    (b1, b2), m, v, t = betas, list(exp_avg), list(exp_avg_sq), step
    for _ in range(k):
        grads = torch.autograd.grad(loss_of(params), params, create_graph=True)
        t += 1
        new = []
        for i, (p, g) in enumerate(zip(params, grads)):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            # + 1e-30 inside the root: a finite derivative where a moment is exactly 0
            denom = torch.sqrt(v[i] / (1 - b2 ** t) + 1e-30) + eps
            new.append(p - lr * (m[i] / (1 - b1 ** t)) / denom)
        params = new
    return params


class Trainer(PhasedTrainer):
    """`step() -> dict[str, float]`, `step_d()` / `step_g()` (the two halves), `run(n)`, `sample(n)`,
    `save(path)` / `Trainer.load(path)`.

    The phases are `PhasedTrainer`'s; this trainer adds the toy's techniques that change the procedure: the K+1
    classifier D (`reg.semi_supervised_fraction`), the unrolled D G looks through (`unrolled_d_logits`), PacGAN's
    packing (`pack`). Everything else is a registry regularizer. A technique that is off creates no module,
    optimizer or random draw.

    Snapshots of all nets' weights every `viz.snapshot_every` steps are kept in memory; when more than
    `viz.max_snapshots` accumulate, every second one is dropped and the interval doubles, so memory stays below
    max_snapshots × (size of the nets' weights).
    """

    def __init__(self, cfg: Config, callbacks: Sequence[Callback] = ()):
        self.cfg = cfg.validate()
        self._init_state(callbacks)
        r = cfg.reg
        self.device = torch.device(cfg.device)
        self.data = make_data(cfg.data)
        self.loss = get_loss(cfg.loss)
        self.semi = r.semi_supervised_fraction > 0
        with SEEDED_INIT, torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.nets: dict[str, torch.nn.Module] = {"G": Generator(cfg)}
            self.nets["D"] = KPlusOneDiscriminator(cfg, self.data.n_modes) if self.semi else Discriminator(cfg)
            if r.mode_lambda1 > 0 or r.mode_lambda2 > 0 or r.mdgan:
                self.nets["E"] = Encoder(cfg)
            if r.mdgan:
                self.nets["D2"] = Discriminator(cfg)
        for net in self.nets.values():
            net.to(self.device)
        o = cfg.optim
        self.base_lr = {name: (o.lr_d if name.startswith("D") else o.lr_g) for name in self.nets}
        self.optims = {name: make_adam(net.parameters(), self.base_lr[name], (o.beta1, o.beta2), self.device,
                                       o.cuda_graph) for name, net in self.nets.items()}
        self.rngs = RandomStreams(cfg.seed, self.device if o.cuda_graph else "cpu")   # a captured step draws there
        self.z_eval = torch.randn(cfg.viz.eval_samples, cfg.nets.latent_dim,
                                  generator=self.rngs.fixed("eval")).to(self.device)
        if self.semi:
            n_labelled = max(1, round(r.semi_supervised_fraction * o.batch_size))
            self.labelled = (torch.arange(o.batch_size) < n_labelled).to(self.device)   # which of a batch D may read
            x, y = self.data.sample(HELD_OUT, self.rngs.fixed("held_out"), return_labels=True)
            self.held_out = (x.to(self.device), y.to(self.device))
        self.snapshots: list[dict] = []
        self.snapshot_every = cfg.viz.snapshot_every
        self.take_snapshot()
        self.graph_step = GraphStep(self) if o.cuda_graph else None

    # ---- batches and the toy's hooks into the phases ------------------------------------------------------------
    def noise(self, n: int) -> torch.Tensor:
        g = self.rngs["noise"]
        return to_run_device(torch.randn(n, self.cfg.nets.latent_dim, generator=g, device=g.device), self.device)

    def real_batch(self, n: int) -> torch.Tensor:
        return to_run_device(self.data.sample(n, self.rngs["data"]), self.device)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """PacGAN: m consecutive samples concatenated into one D input, (N, 2) -> (N/m, 2m)."""
        return x.reshape(-1, 2 * self.cfg.nets.pack)

    as_d_input = pack

    def latent_batch(self) -> torch.Tensor:
        return self.noise(self.cfg.optim.batch_size)

    def real_for_d(self) -> torch.Tensor:
        B = self.cfg.optim.batch_size
        if not self.semi:
            return self.real_batch(B)
        real, labels = self.data.sample(B, self.rngs["data"], return_labels=True)
        self._labels = to_run_device(labels, self.device)
        return to_run_device(real, self.device)

    def d_objective(self, real, fake, stats):
        if not self.semi:
            return super().d_objective(real, fake, stats)
        real_logits, real_feats = self.D.classify(real)
        fake_logits, fake_feats = self.D.classify(fake)
        loss = k_plus_one_d_loss(real_logits, fake_logits, self._labels, self.labelled,
                                 halve=self.cfg.reg.semi_supervised_halve)
        return (loss, k_plus_one_real_logit(real_logits), k_plus_one_real_logit(fake_logits), real_feats,
                fake_feats)

    def g_objective(self, real, fake, fake_out):
        if self.cfg.reg.unrolled_steps > 0:
            return self.loss.g(self.unrolled_d_logits(self.pack(real), self.pack(fake)))
        return self.loss.g(fake_out)

    def metrics_every(self) -> int:
        return self.cfg.viz.metrics_every

    def after_iteration(self) -> None:
        if self.iteration % self.snapshot_every == 0:
            self.take_snapshot()

    def unrolled_d_logits(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Unrolled GAN (Metz et al. 2017): k differentiable Adam steps of D's adversarial loss, from D's current
        weights and Adam moments, on this iteration's real batch and G's fake batch (which keeps its graph); then
        D's logits of the fake batch under the unrolled weights, so G's gradient flows through the k updates.
        D itself is not changed. The regularizers are not part of the unrolled loss."""
        D, opt, cfg = self.D, self.optims["D"], self.cfg
        group = opt.param_groups[0]
        names, params = zip(*D.named_parameters())
        state = [opt.state.get(p, {}) for p in params]

        def moments(name):               # zeros before D's first step
            return [st[name] if st else torch.zeros_like(p) for st, p in zip(state, params)]

        def logits(weights, x):
            return functional_call(D, dict(zip(names, weights)), (x,))
        weights = unrolled_adam(lambda w: self.loss.d(logits(w, real), logits(w, fake), cfg.reg.real_target),
                                list(params), moments("exp_avg"), moments("exp_avg_sq"),
                                float(state[0].get("step", 0.0)), group["lr"], group["betas"], group["eps"],
                                cfg.reg.unrolled_steps)
        return logits(weights, fake)

    # ---- evaluation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def eval_samples(self) -> torch.Tensor:
        """G on the fixed evaluation noise: frames and metrics at different steps see the same z. G runs in eval
        mode: batch norm (nets.g.batch_norm) reads its running statistics, as every picture does."""
        with eval_mode(self.G):
            return self.G(self.z_eval)

    def sample(self, n: int, seed: Optional[int] = None) -> np.ndarray:
        """n samples of G as an (n, 2) array; the noise is seeded (`seed`, else the config's) and leaves the
        training noise stream untouched."""
        g = self.rngs.fixed("sample") if seed is None else torch.Generator().manual_seed(seed)
        with torch.no_grad(), eval_mode(self.G):
            z = torch.randn(n, self.cfg.nets.latent_dim, generator=g).to(self.device)
            return self.G(z).cpu().numpy()

    def evaluate(self) -> dict[str, float]:
        """Mode coverage of G's samples on the fixed evaluation noise (METHODS §5), then each callback's numbers;
        with the K+1 classifier also its accuracy on held-out labelled points, `eval/accuracy`."""
        cov = mode_coverage(self.eval_samples().cpu().numpy(), self.data.centers.numpy(), self.data.coverage_std,
                            self.data.weights.numpy())
        out = {"eval/modes": float(cov.modes), "eval/hq": cov.hq, "eval/reverse_kl": cov.reverse_kl}
        for cb in self.callbacks:
            out.update(cb.evaluate(self))
        if self.semi:
            with torch.no_grad():
                logits = self.D.classify(self.held_out[0])[0]
            out["eval/accuracy"] = (logits.argmax(1) == self.held_out[1]).float().mean().item()
        return out

    # ---- snapshots and checkpoints -----------------------------------------------------------------------------
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
        return {"format": FORMAT, "config": self.cfg.to_dict(), **self.training_state(),
                "snapshots": self.snapshots, "snapshot_every": self.snapshot_every}

    def save(self, path) -> None:
        atomic_torch_save(self.state_dict(), path)

    @classmethod
    def load(cls, path, device: Optional[str] = None, expect: Optional[Config] = None,
             callbacks: Sequence[Callback] = ()) -> "Trainer":
        """Rebuild from a checkpoint (state dicts + config, `weights_only=True`). With `expect`, refuse a
        checkpoint whose networks differ from that config's."""
        ckpt = read_checkpoint(path, FORMAT, "toyviz checkpoint")
        try:
            cfg = Config.from_dict(ckpt["config"])
            if device is not None:
                cfg.device = device
            if expect is not None and cfg.nets != expect.nets:
                raise ValueError("the checkpoint's networks differ from the current configuration's "
                                 "(width, depth, activation or D options)")
            t = cls(cfg, callbacks)
            t.load_state_dict(ckpt)
            _check_loaded(t, ckpt)
        except (KeyError, TypeError, AttributeError, IndexError, RuntimeError) as e:   # a damaged or forged file
            raise ValueError(f"{path}: not a toyviz checkpoint ({type(e).__name__}: "
                             f"{' '.join(str(e).split())[:120]})") from None
        return t

    def load_state_dict(self, ckpt: dict) -> None:
        self.load_training_state(ckpt)
        self.snapshots = list(ckpt["snapshots"])
        self.snapshot_every = ckpt["snapshot_every"]


def _check_loaded(t: Trainer, ck: dict) -> None:
    """TypeError when what a checkpoint put into `t` is not what training reads (a damaged or forged file): caught
    at load, not at the next step."""
    ints = (t.iteration, t.snapshot_every, t.d_phases)
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ints) or t.snapshot_every < 1:
        raise TypeError("iteration, snapshot_every and half_step.d_phases must be counts")
    if not all(isinstance(s, dict) and all(isinstance(v, (int, float)) for v in s.values()) for s in t.history):
        raise TypeError("history must be a list of dicts of numbers")
    if not all(isinstance(s, dict) and isinstance(s.get("iteration"), int) and isinstance(s.get("nets"), dict)
               for s in t.snapshots):
        raise TypeError("snapshots must be a list of {iteration, nets}")
    for s in t.snapshots:
        for name, sd in s["nets"].items():
            mine = t.nets[name].state_dict()
            if set(sd) != set(mine) or any(not isinstance(sd[k], torch.Tensor) or sd[k].shape != v.shape
                                           for k, v in mine.items()):
                raise TypeError(f"snapshot at step {s['iteration']} does not fit net {name}")
    for opt in t.optims.values():
        for p, st in opt.state.items():
            if any(isinstance(v, torch.Tensor) and v.dim() and v.shape != p.shape for v in st.values()):
                raise TypeError("an optimizer state does not fit its parameter")
    if t.pending_real is not None and (t.pending_real.dim() != 2 or t.pending_real.shape[1] != 2):
        raise TypeError("half_step.pending_real must be a batch of (x, y) points")
