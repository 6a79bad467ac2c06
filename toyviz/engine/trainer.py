"""The toy trainer: explicit D phase(s) then G phase, regularizers from the registry, bounded snapshots, exact resume.

Seeds: one `torch.Generator` each for data, noise, regularizer randomness and evaluation noise; network init runs
under a forked global RNG seeded from the config, so two trainers with one seed are bit-identical.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.func import functional_call

from .atomic_files import atomic_torch_save
from .config import Config
from .coverage import mode_coverage
from .data import make_data
from .losses import get_loss, k_plus_one_d_loss, k_plus_one_real_logit
from .nets import Discriminator, Encoder, Generator, KPlusOneDiscriminator
from .regularizers import REGISTRY, StepContext, mode_regularizer_terms, reconstruction_distance

HELD_OUT = 2000     # labelled points the K+1 classifier's accuracy is measured on


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the weights and snapshots are those of the last finite step."""


class Callback:
    """What the command layer and the page add to a trainer, so the engine never imports raster or drawing code.

    `evaluate(trainer)` returns extra numbers merged into the stats of each evaluation step (after coverage);
    `after_step(trainer, stats)` sees every finished step (logging, timing, pictures). Both default to nothing."""

    def evaluate(self, trainer: "Trainer") -> dict[str, float]:
        return {}

    def after_step(self, trainer: "Trainer", stats: dict[str, float]) -> None:
        pass


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


class Trainer:
    """`step() -> dict[str, float]`, `run(n)`, `sample(n)`, `save(path)` / `Trainer.load(path)`.

    One iteration, top to bottom (`step`): `optim.d_steps` × `d_phase`, then `g_phase`; with `reg.mdgan`,
    `manifold_phase` then `diffusion_phase` instead. Techniques that change the procedure are named parts of those
    phases: the K+1 classifier D (`reg.semi_supervised_fraction`), the unrolled D G looks through
    (`unrolled_d_logits`), and the encoder E trained with G on the mode regularizers. Everything else is a
    registry regularizer. A technique that is off creates no module, optimizer or random draw.

    Snapshots of all nets' weights every `viz.snapshot_every` steps are kept in memory; when more than
    `viz.max_snapshots` accumulate, every second one is dropped and the interval doubles, so memory stays below
    max_snapshots × (size of the nets' weights) — about 55 MB for `ring8` at the default 200.
    """

    def __init__(self, cfg: Config, callbacks: Sequence[Callback] = ()):
        self.cfg = cfg.validate()
        self.callbacks = list(callbacks)
        r = cfg.reg
        self.device = torch.device(cfg.device)
        self.data = make_data(cfg.data)
        self.loss = get_loss(cfg.loss)
        self.semi = r.semi_supervised_fraction > 0
        with torch.random.fork_rng(devices=[]):
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
        self.optims = {name: torch.optim.Adam(net.parameters(), lr=self.base_lr[name], betas=(o.beta1, o.beta2))
                       for name, net in self.nets.items()}
        self.rngs = {name: _generator(cfg.seed * 1000 + i) for i, name in enumerate(("data", "noise", "reg"))}
        self.z_eval = torch.randn(cfg.viz.eval_samples, cfg.nets.latent_dim,
                                  generator=_generator(cfg.seed * 1000 + 7)).to(self.device)
        if self.semi:
            n_labelled = max(1, round(r.semi_supervised_fraction * o.batch_size))
            self.labelled = (torch.arange(o.batch_size) < n_labelled).to(self.device)   # which of a batch D may read
            x, y = self.data.sample(HELD_OUT, _generator(cfg.seed * 1000 + 13), return_labels=True)
            self.held_out = (x.to(self.device), y.to(self.device))
        self.reg_state: dict[str, torch.Tensor] = {}
        self.iteration = 0
        self.history: list[dict[str, float]] = []
        self.monitoring = True          # regularizers log their diagnostic monitors this step
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

    # ---- shared pieces of the phases ---------------------------------------------------------------------------
    def _set_lr(self) -> None:
        o = self.cfg.optim
        frac = min(self.iteration / max(o.iters, 1), 1.0) if o.lr_schedule == "linear" else 0.0
        for name, opt in self.optims.items():
            lr = self.base_lr[name] + (o.lr_floor - self.base_lr[name]) * frac
            for group in opt.param_groups:
                group["lr"] = lr

    def _apply_regularizers(self, player: str, ctx: StepContext, loss: torch.Tensor, stats: dict,
                            prefix: str = "reg") -> torch.Tensor:
        for reg in REGISTRY:
            if reg.player != player:
                continue
            w = reg.weight(self.cfg, self.iteration)
            if w == 0:
                continue
            value, reg_stats = reg(ctx)
            loss = loss + w * value
            key = f"{prefix}/{reg.name}"
            stats[key] = value.item()
            stats[f"{key}/weighted"] = w * stats[key]
            stats.update({f"{key}/{k}": v for k, v in reg_stats.items()})
        return loss

    def _check_finite(self, name: str, value: torch.Tensor) -> None:
        if not torch.isfinite(value):
            raise TrainingDiverged(f"{name} became {float(value.detach())} at step {self.iteration + 1}; "
                                   f"the weights are those of step {self.iteration}")

    def _update(self, names: tuple[str, ...], loss: torch.Tensor, stat: str) -> None:
        """One backward of `loss`, then a step of each named net's optimizer (after a finiteness check)."""
        self._check_finite(stat, loss)
        for name in names:
            self.optims[name].zero_grad(set_to_none=True)
        loss.backward()
        for name in names:
            self.optims[name].step()

    # ---- the standard procedure: D phase(s), then G phase --------------------------------------------------------
    def d_phase(self, stats: dict) -> torch.Tensor:
        """D's adversarial loss (or the K+1 classifier's) plus the 'd' regularizers. Returns the real batch."""
        cfg, D, G, B = self.cfg, self.D, self.G, self.cfg.optim.batch_size
        if self.semi:
            real, labels = self.data.sample(B, self.rngs["data"], return_labels=True)
            real, labels = real.to(self.device), labels.to(self.device)
        else:
            real = self.real_batch(B)
        with torch.no_grad():
            fake = G(self.noise(B))
        if self.semi:
            real_logits, real_feats = D.classify(real)
            fake_logits, fake_feats = D.classify(fake)
            loss = k_plus_one_d_loss(real_logits, fake_logits, labels, self.labelled,
                                     halve=cfg.reg.semi_supervised_halve)
            real_out, fake_out = k_plus_one_real_logit(real_logits), k_plus_one_real_logit(fake_logits)
        else:
            real_out, real_feats = D.forward_features(self.pack(real))
            fake_out, fake_feats = D.forward_features(self.pack(fake))
            loss = self.loss.d(real_out, fake_out, cfg.reg.real_target)
        stats["loss/d"] = loss.item()
        ctx = StepContext(cfg, self.iteration, self.pack(real), self.pack(fake), D, G, self.rngs["reg"],
                          real_out, fake_out, real_feats, fake_feats, extra=self.reg_state, monitors=self.monitoring)
        self._update(("D",), self._apply_regularizers("d", ctx, loss, stats), "loss/d")
        return real

    def g_phase(self, stats: dict, real: torch.Tensor) -> None:
        """G's adversarial loss (through the unrolled D when `reg.unrolled_steps` > 0; dropped when feature
        matching replaces it), the mode regularizers on `real` with E updated in the same backward (E's objective
        is exactly those terms, the only ones that reach it), then the 'g' regularizers."""
        cfg, D, G, B = self.cfg, self.D, self.G, self.cfg.optim.batch_size
        z = self.noise(B)
        fake = G(z)
        fake_out, fake_feats = D.forward_features(self.pack(fake))
        if cfg.reg.unrolled_steps > 0:
            loss = self.loss.g(self.unrolled_d_logits(self.pack(real), self.pack(fake)))
        else:
            loss = self.loss.g(fake_out)
        stats["loss/g"] = loss.item()
        if cfg.reg.feature_matching_replace:
            loss = torch.zeros((), device=self.device)
        names = ("G",)
        if "E" in self.nets:
            loss = loss + self.mode_regularizers(real, stats)
            names = ("G", "E")
        ctx = StepContext(cfg, self.iteration, self.pack(real), self.pack(fake), D, G, self.rngs["reg"],
                          None, fake_out, None, fake_feats, z=z, extra=self.reg_state, monitors=self.monitoring)
        self._update(names, self._apply_regularizers("g", ctx, loss, stats), "loss/g")

    def mode_regularizers(self, real: torch.Tensor, stats: dict) -> torch.Tensor:
        """Che et al. 2017: λ1·E‖x − G(E(x))‖² + λ2·E[∓log D(G(E(x)))] (METHODS §3), for G and E alike."""
        r = self.cfg.reg
        recon = self.G(self.nets["E"](real))
        geometric, mode = mode_regularizer_terms(real, recon, self.D(self.pack(recon)), r.mode_sign)
        stats["reg/mode/geometric"], stats["reg/mode/mode"] = geometric.item(), mode.item()
        return r.mode_lambda1 * geometric + r.mode_lambda2 * mode

    def unrolled_d_logits(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Unrolled GAN (Metz et al. 2017): k differentiable Adam steps of D's adversarial loss, from D's current
        weights and Adam moments, on this iteration's real batch and G's fake batch (which keeps its graph); then
        D's logits of the fake batch under the unrolled weights, so G's gradient flows through the k updates.
        D itself is not changed. The regularizers are not part of the unrolled loss."""
        D, opt, cfg = self.D, self.optims["D"], self.cfg
        group = opt.param_groups[0]
        (b1, b2), lr, eps = group["betas"], group["lr"], group["eps"]
        params = dict(D.named_parameters())
        state = {name: opt.state.get(p, {}) for name, p in params.items()}
        m = {k: st["exp_avg"] if st else torch.zeros_like(params[k]) for k, st in state.items()}
        v = {k: st["exp_avg_sq"] if st else torch.zeros_like(params[k]) for k, st in state.items()}
        t = float(next(iter(state.values())).get("step", 0.0))
        for _ in range(cfg.reg.unrolled_steps):
            loss = self.loss.d(functional_call(D, params, (real,)), functional_call(D, params, (fake,)),
                               cfg.reg.real_target)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            t += 1
            new = {}
            for (k, p), g in zip(params.items(), grads):
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                # + 1e-30 inside the root: a finite derivative where a moment is exactly 0
                denom = torch.sqrt(v[k] / (1 - b2 ** t) + 1e-30) + eps
                new[k] = p - lr * (m[k] / (1 - b1 ** t)) / denom
            params = new
        return functional_call(D, params, (fake,))

    # ---- MDGAN (Che et al. 2017, METHODS §3): manifold step, then diffusion step ----------------------------------
    def manifold_phase(self, stats: dict) -> torch.Tensor:
        """D1 (= `D`) separates x from G(E(x)); then G and E minimize λ·‖x − G(E(x))‖² + G's loss on D1(G(E(x)))
        (−log D1(G(E(x))) for ns). Returns the real batch."""
        cfg, D, G, E, B = self.cfg, self.D, self.G, self.nets["E"], self.cfg.optim.batch_size
        real = self.real_batch(B)
        with torch.no_grad():
            recon = G(E(real))
        real_out, real_feats = D.forward_features(self.pack(real))
        recon_out, recon_feats = D.forward_features(self.pack(recon))
        loss = self.loss.d(real_out, recon_out, cfg.reg.real_target)
        stats["loss/d"] = loss.item()
        ctx = StepContext(cfg, self.iteration, self.pack(real), self.pack(recon), D, G, self.rngs["reg"],
                          real_out, recon_out, real_feats, recon_feats, extra=self.reg_state, monitors=self.monitoring)
        self._update(("D",), self._apply_regularizers("d", ctx, loss, stats), "loss/d")

        recon = G(E(real))
        geometric = reconstruction_distance(real, recon)
        adv = self.loss.g(D(self.pack(recon)))
        stats["loss/g_manifold"], stats["reg/mdgan/geometric"] = adv.item(), geometric.item()
        self._update(("G", "E"), cfg.reg.mdgan_lambda * geometric + adv, "loss/g_manifold")
        return real

    def diffusion_phase(self, stats: dict, real: torch.Tensor) -> None:
        """D2 treats G(E(x)) as real and G(z) as fake; then G minimizes its loss on D2(G(z)) (−log D2(G(z)))."""
        cfg, D2, G, E, B = self.cfg, self.nets["D2"], self.G, self.nets["E"], self.cfg.optim.batch_size
        with torch.no_grad():
            recon, fake = G(E(real)), G(self.noise(B))
        recon_out, recon_feats = D2.forward_features(self.pack(recon))
        fake_out, fake_feats = D2.forward_features(self.pack(fake))
        loss = self.loss.d(recon_out, fake_out, cfg.reg.real_target)
        stats["loss/d2"] = loss.item()
        ctx = StepContext(cfg, self.iteration, self.pack(recon), self.pack(fake), D2, G, self.rngs["reg"],
                          recon_out, fake_out, recon_feats, fake_feats, extra=self.reg_state,
                          monitors=self.monitoring, net_name="D2")
        self._update(("D2",), self._apply_regularizers("d", ctx, loss, stats, prefix="reg/D2"), "loss/d2")

        z = self.noise(B)
        fake = G(z)
        fake_out, fake_feats = D2.forward_features(self.pack(fake))
        loss = self.loss.g(fake_out)
        stats["loss/g"] = loss.item()
        ctx = StepContext(cfg, self.iteration, self.pack(recon), self.pack(fake), D2, G, self.rngs["reg"],
                          None, fake_out, None, fake_feats, z=z, extra=self.reg_state,
                          monitors=self.monitoring, net_name="D2")
        self._update(("G",), self._apply_regularizers("g", ctx, loss, stats), "loss/g")

    # ---- one iteration -----------------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        """One iteration: `optim.d_steps` D updates, then one G update (MDGAN: manifold, then diffusion step).
        Returns slash-keyed floats."""
        self._set_lr()
        stats: dict[str, float] = {}
        self.monitoring = self.iteration == 0 or self.evaluates(self.iteration + 1)
        if self.cfg.reg.mdgan:
            self.diffusion_phase(stats, self.manifold_phase(stats))
        else:
            for _ in range(self.cfg.optim.d_steps):
                real = self.d_phase(stats)
            self.g_phase(stats, real)
        self.iteration += 1
        stats["step"] = self.iteration
        stats["lr/g"] = self.optims["G"].param_groups[0]["lr"]
        if self.evaluates(self.iteration):
            stats.update(self.evaluate())
        self.history.append(stats)
        if self.iteration % self.snapshot_every == 0:
            self.take_snapshot()
        for cb in self.callbacks:
            cb.after_step(self, stats)
        return stats

    def evaluates(self, step: int) -> bool:
        """Whether the trainer evaluates after `step` steps: every `viz.metrics_every`, and at the last step."""
        return step % self.cfg.viz.metrics_every == 0 or step == self.cfg.optim.iters

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
        """Mode coverage of G's samples on the fixed evaluation noise (METHODS §5), then each callback's numbers;
        with the K+1 classifier also its accuracy on held-out labelled points, `eval/accuracy`."""
        cov = mode_coverage(self.eval_samples().cpu().numpy(), self.data.centers.numpy(), self.data.std,
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
        atomic_torch_save(self.state_dict(), path)

    @classmethod
    def load(cls, path, device: Optional[str] = None, expect: Optional[Config] = None,
             callbacks: Sequence[Callback] = ()) -> "Trainer":
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
        t = cls(cfg, callbacks)
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
