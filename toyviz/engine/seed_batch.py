"""Seeds as one batch (METHODS §9): S seeds of one config trained in one process as stacked networks, each seed's
numbers those of its own `Trainer` run (float rounding aside: batched matrix products sum in another order).

Each seed keeps a real `Trainer` (`SeedBatch.trainers[seed]`), built as a run of that seed builds it: its nets'
initial weights, its `RandomStreams`, its evaluation noise, snapshots and history. The batch stacks those nets'
weights on a leading seed axis (`stacked.StackedMLP`: products by `torch.baddbmm`), draws every batch from each
seed's own streams and stacks the draws, and computes per-seed losses (S,) whose sum gives one backward per phase:
seeds never mix, so each seed's gradient is its own; Adam is elementwise, so one Adam over the stacked parameters
is S Adams (`stacked.StackedAdam`). A seed's Trainer gets its weights back when it evaluates (its callbacks, e.g.
RegionMetrics, read a normal net), takes a snapshot or is saved (`trainer(seed)`: nets and Adam state), so its run
folder and checkpoint are those of a normal run. A seed whose loss becomes NaN, infinite or beyond ±MAX_LOSS stops
alone, its Trainer rolled back to the end of the previous step as `PhasedTrainer` rolls back, with the message a
Trainer raises (`failed[seed]`); the others go on.

Batched: every adversarial loss, label smoothing, PacGAN, several D steps, the lr schedule, BRE (any layers,
samples, schedule), the gradient penalty, minibatch discrimination and unrolled D. `refusal(cfg)` names what is
not, and why. The phases are those of `phases.PhasedTrainer` (D half then G half, whole iterations only);
callbacks' `after_step` is not called (the nets are synced on evaluations and snapshots only).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Optional, Sequence

import torch

from .config import Config
from .phases import MAX_LOSS, TrainingDiverged
from .regularizers import REGISTRY, bre_layer_indices, bre_stacked, input_gradients, mix
from .stacked import SEED_LOSSES, StackedAdam, StackedMLP, unstacked
from .trainer import Callback, Trainer, unrolled_adam

# ---- what a seed batch cannot do, and why --------------------------------------------------------------------------
# (technique, is it on?, why a batch does not run it). Registry regularizers not named here are refused by name.
_TECHNIQUES: list[tuple[str, Callable[[Config], bool], str]] = [
    ("spectral normalization (nets.d_spectral_norm)", lambda c: c.nets.d_spectral_norm,
     "each net's power iteration keeps its own state vectors"),
    ("virtual batch norm (nets.g_vbn)", lambda c: c.nets.g_vbn,
     "each G normalizes by its own reference batch, a module the stacked MLP does not have"),
    ("batch norm in G (nets.g.batch_norm)", lambda c: c.nets.g.batch_norm,
     "each G keeps its own running statistics, a module the stacked MLP does not have"),
    ("maxout units (nets.d.activation maxout)", lambda c: c.nets.d.activation == "maxout",
     "the stacked MLP has elementwise activations only"),
    ("the K+1 semi-supervised D (reg.semi_supervised_fraction)", lambda c: c.reg.semi_supervised_fraction > 0,
     "its classifier D and labelled batches are not stacked"),
    ("mode regularizers (reg.mode_lambda1/2)", lambda c: c.reg.mode_lambda1 > 0 or c.reg.mode_lambda2 > 0,
     "the encoder E is not stacked"),
    ("MDGAN (reg.mdgan)", lambda c: c.reg.mdgan, "its encoder E and second D are not stacked"),
    ("a captured step (optim.cuda_graph)", lambda c: c.optim.cuda_graph,
     "the batch runs its own stacked step, and the per-seed streams live on the CPU"),
]
_REGULARIZER_NAMES = {"fm": "feature matching (reg.feature_matching)",
                      "ha_d": "historical averaging (reg.historical_averaging)",
                      "ha_g": "historical averaging (reg.historical_averaging)"}


def refusal(cfg: Config) -> Optional[str]:
    """One line saying why `cfg` cannot train as a seed batch (naming the technique), or None when it can."""
    for name, on, why in _TECHNIQUES:
        if on(cfg):
            return f"{name} cannot run as a seed batch: {why}"
    for reg in REGISTRY:
        if reg.name not in SeedBatch.TERMS and reg.weight(cfg, 0) != 0:
            name = _REGULARIZER_NAMES.get(reg.name, f"the regularizer {reg.name}")
            return f"{name} cannot run as a seed batch: the batch computes only BRE and the gradient penalty per seed"
    return None


def _check_resumable(cfg: Config, seeds: list[int], trainers: dict[int, Trainer]) -> None:
    """ValueError unless `trainers` are the seeds' runs of `cfg`, all at the same whole iteration."""
    if sorted(trainers) != sorted(seeds):
        raise ValueError(f"the trainers' seeds {sorted(trainers)} are not the batch's {sorted(seeds)}")
    for s, t in trainers.items():
        if t.cfg.to_dict() != cfg.replace(seed=s).to_dict():
            raise ValueError(f"seed {s}'s run has another config than the batch's")
    steps = {s: t.iteration for s, t in trainers.items()}
    if len(set(steps.values())) != 1 or any(t.d_phases for t in trainers.values()):
        raise ValueError(f"a seed batch continues seeds at one whole iteration (got steps {steps})")


# ---- the batch -------------------------------------------------------------------------------------------------------
class SeedBatch:
    """`step() -> {seed: stats}`, `run(n)`, `trainer(seed)` (that seed's up-to-date Trainer), `seeds` (those still
    training, in batch order), `failed` ({seed: message} of seeds that stopped on a non-finite loss)."""

    # D's registry regularizers a batch computes per seed: registry name -> the method, called with
    # (real, fake, real_pre, fake_pre) as D reads them and returning (value (S,), {stat: (S,)}). `refusal` refuses
    # any other regularizer.
    TERMS = {"bre": "bre", "gp": "gradient_penalty"}

    def __init__(self, cfg: Config, seeds: Sequence[int], callbacks: Sequence[Callback] = (),
                 trainers: Optional[dict[int, Trainer]] = None):
        """`trainers`: the seeds' Trainers loaded from their checkpoints, all at one whole iteration: the batch goes
        on from there (their weights, Adam states and random streams), as each `train --resume` would."""
        reason = refusal(cfg)
        if reason:
            raise ValueError(reason)
        seeds = list(seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"a seed batch needs distinct seeds (got {seeds})")
        self.cfg = cfg.validate()
        if trainers is None:
            trainers = {s: Trainer(cfg.replace(seed=s), callbacks) for s in seeds}
        else:
            _check_resumable(cfg, seeds, trainers)
        self.trainers = trainers
        self.seeds, self.failed = seeds, {}
        self.iteration, self.monitoring = trainers[seeds[0]].iteration, True
        self._start: Optional[dict] = None           # what a divergence puts back (`_mark`)
        self.device = torch.device(cfg.device)
        self.loss_d, self.loss_g = SEED_LOSSES[cfg.loss]
        first = self.trainers[seeds[0]]
        self.data, self.base_lr = first.data, first.base_lr
        g = cfg.nets
        tanh = (lambda out: g.g_output_scale * torch.tanh(out)) if g.g_output == "tanh" else None
        self.nets = {"G": StackedMLP([t.G.mlp for t in self._live()], tanh),
                     "D": StackedMLP([t.D for t in self._live()])}
        for net in self.nets.values():
            net.params = [torch.nn.Parameter(p.detach().to(self.device)) for p in net.params]
        self.optims = {name: StackedAdam(net.params, first.optims[name]) for name, net in self.nets.items()}
        for name, opt in self.optims.items():          # a fresh Adam's state is empty: this matters on resume only
            opt.load_seed_states([[t.optims[name].state.get(p, {}) for p in t.nets[name].parameters()]
                                  for t in self._live()])

    def _live(self) -> list[Trainer]:
        return [self.trainers[s] for s in self.seeds]

    # ---- batches from each seed's own streams, stacked ------------------------------------------------------------
    def real_batch(self) -> torch.Tensor:
        """(S, B, 2): each seed's `Trainer.real_batch(B)` (its data stream draws exactly what a run draws)."""
        draws = [t.data.draw(self.cfg.optim.batch_size, t.rngs["data"]) for t in self._live()]
        noise = None if draws[0][1] is None else torch.stack([d[1] for d in draws])
        return self.data.place(torch.stack([d[0] for d in draws]), noise)[0].to(self.device)

    def latent_batch(self) -> torch.Tensor:
        """(S, B, latent): each seed's `Trainer.latent_batch()`."""
        n, k = self.cfg.optim.batch_size, self.cfg.nets.latent_dim
        return torch.stack([torch.randn(n, k, generator=t.rngs["noise"]) for t in self._live()]).to(self.device)

    def as_d_input(self, x: torch.Tensor) -> torch.Tensor:
        """PacGAN per seed: (S, N, 2) -> (S, N/m, 2m)."""
        return x.reshape(x.shape[0], -1, 2 * self.cfg.nets.pack)

    # ---- the phases ----------------------------------------------------------------------------------------------
    def _set_lr(self) -> None:
        o = self.cfg.optim
        frac = min(self.iteration / max(o.iters, 1), 1.0) if o.lr_schedule == "linear" else 0.0
        for name, opt in self.optims.items():
            opt.lr = self.base_lr[name] + (o.lr_floor - self.base_lr[name]) * frac

    def d_phase(self, stats: dict) -> torch.Tensor:
        """`PhasedTrainer.d_phase` for every seed: D's adversarial loss plus its regularizers (in the registry's
        order, as `PhasedTrainer._apply_regularizers` adds and logs them), one update. Returns the real batch as D
        read it."""
        real = self.as_d_input(self.real_batch())
        with torch.no_grad():
            fake = self.as_d_input(self.nets["G"](self.latent_batch()))
        D = self.nets["D"]
        real_out, real_pre = D.forward_features(real)
        fake_out, fake_pre = D.forward_features(fake)
        loss = self.loss_d(real_out, fake_out, self.cfg.reg.real_target)
        stats["loss/d"] = loss.detach()
        for reg in REGISTRY:
            w = reg.weight(self.cfg, self.iteration) if reg.player == "d" else 0
            if w != 0:
                value, reg_stats = getattr(self, self.TERMS[reg.name])(real, fake, real_pre, fake_pre)
                key = f"reg/{reg.name}"
                stats[key] = value.detach()
                stats[f"{key}/weighted"] = w * value.detach().double()
                stats.update({f"{key}/{k}": v for k, v in reg_stats.items()})
                loss = loss + w * value
        kept = self._update("D", loss, "loss/d", stats)
        return real if kept is None else real[kept]

    def g_phase(self, stats: dict, real: torch.Tensor) -> None:
        """`PhasedTrainer.g_phase` for every seed: G's adversarial loss through the current D, or through D unrolled
        on `real` (this iteration's last real batch) and the fake batch (`Trainer.unrolled_d_logits`); one update
        (only G's gradients are computed: D's would be discarded)."""
        fake = self.as_d_input(self.nets["G"](self.latent_batch()))
        if self.cfg.reg.unrolled_steps > 0:
            fake_out = self.unrolled_d_logits(real, fake)
        else:
            fake_out, _ = self.nets["D"].forward_features(fake)
        loss = self.loss_g(fake_out)
        stats["loss/g"] = loss.detach()
        self._update("G", loss, "loss/g", stats)

    def unrolled_d_logits(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """`Trainer.unrolled_d_logits` for every seed: `unrolled_adam` over the stacked weights and moments (Adam is
        elementwise and the seeds' losses are summed, so each seed's slice takes its own k steps)."""
        D, opt = self.nets["D"], self.optims["D"]

        def loss(weights):
            return self.loss_d(D.forward_features(real, params=weights)[0],
                               D.forward_features(fake, params=weights)[0], self.cfg.reg.real_target).sum()
        weights = unrolled_adam(loss, list(D.params), opt.exp_avg, opt.exp_avg_sq, float(opt.steps[0]), opt.lr,
                                (opt.beta1, opt.beta2), opt.eps, self.cfg.reg.unrolled_steps)
        return D.forward_features(fake, params=weights)[0]

    def gradient_penalty(self, real, fake, *_) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`GradientPenalty` per seed: E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²] over each seed's interpolates x̂ = α·x + (1−α)·x̃, α
        drawn from each seed's reg stream as `regularizers.interpolate` draws it."""
        alpha = torch.stack([torch.rand(real.shape[1], 1, generator=t.rngs["reg"]) for t in self._live()])
        norm = input_gradients(self.nets["D"], mix(real, fake, alpha.to(self.device), "paper")).norm(dim=2)  # (S, N)
        return ((norm - 1) ** 2).mean(1), {"grad_norm": norm.detach().mean(1)}

    def bre(self, real, fake, real_pre, fake_pre) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`BRERegularizer` per seed: (Σ over the sample sets of R_BRE (S,), its stats (S,) each, in the order the
        registry logs them). The sets of all seeds go through `bre_stacked` at once; interpolates draw α from each
        seed's reg stream."""
        b = self.cfg.reg.bre
        layers = bre_layer_indices(b.layers, self.nets["D"].depth)
        sets = []
        for kind in b.samples:
            if kind == "fake":
                pre = fake_pre
            elif kind == "real":
                pre = real_pre
            else:
                alpha = torch.stack([torch.rand(real.shape[1], 1, generator=t.rngs["reg"]) for t in self._live()])
                _, pre = self.nets["D"].forward_features(mix(real, fake, alpha.to(self.device), b.interp),
                                                         upto=max(layers))
            sets.append([pre[i] for i in layers])
        S, n = len(self.seeds), len(b.samples)
        r = bre_stacked([torch.cat([s[i] for s in sets]) for i in range(len(layers))],     # (n·S, K, d) a layer
                        margin_s=b.margin_s, eps_scale=b.eps_scale, pairs=b.pairs, monitors=self.monitoring)
        me, ac = r.me.detach().view(n, S), r.ac.detach().view(n, S)
        if self.monitoring:
            monitors = torch.stack([r.frac_09, r.frac_099, r.mean_abs_corr]).view(3, n, S)
        reg_stats = {}
        for j, kind in enumerate(b.samples):
            reg_stats.update({f"{kind}/me": me[j], f"{kind}/ac": ac[j]})
            if self.monitoring:
                reg_stats.update({f"{kind}/frac09": monitors[0, j], f"{kind}/frac099": monitors[1, j],
                                  f"{kind}/corr": monitors[2, j]})
        reg_stats["me"] = sum(v.double() for k, v in reg_stats.items() if k.endswith("/me")) / n
        reg_stats["ac"] = sum(v.double() for k, v in reg_stats.items() if k.endswith("/ac")) / n
        total = r.total.view(n, S)
        return sum(total[j] for j in range(n)), reg_stats

    def _update(self, name: str, loss: torch.Tensor, stat: str, stats: dict) -> Optional[torch.Tensor]:
        """One backward of the seeds' summed losses (S,) and one Adam step. A seed whose loss is NaN, infinite or
        beyond ±MAX_LOSS (`PhasedTrainer._check_finite`'s rule; one host read for all seeds) stops first, its
        Trainer put back at the end of the previous step (`_stop`); the others take the update. Returns the batch
        indices of the seeds kept when some stopped (None when none did)."""
        ok = loss.detach().abs() <= MAX_LOSS                         # False for NaN
        bad = [] if bool(ok.all()) else (~ok).nonzero().flatten().tolist()
        for i in bad:
            self._stop(i, stat, loss.detach()[i])
        if len(bad) < len(self.seeds):
            self.optims[name].zero_grad()
            (loss[ok] if bad else loss).sum().backward(inputs=self.nets[name].params)
            self.optims[name].step()
        if not bad:
            return None
        return self._keep([i for i in range(len(self.seeds)) if i not in bad], stats)

    def _stop(self, i: int, stat: str, value: torch.Tensor) -> None:
        """Seed i diverged: its Trainer gets the state a `Trainer` rolls back to (`PhasedTrainer._roll_back`), the
        end of the previous step: G as it is (it changes only after the iteration's last check), D, D's Adam state
        and the random streams as they were at the start of this iteration; `failed[seed]` gets its message."""
        seed, t = self.seeds[i], self.trainers[self.seeds[i]]
        self._sync(i)
        params, (weights, adam_state) = list(t.nets["D"].parameters()), self._start["D"]
        with torch.no_grad():
            for p, w in zip(params, weights):
                p.copy_(unstacked(w, i, p))
        t.optims["D"].state = defaultdict(dict, self.optims["D"].seed_state(i, params, adam_state))
        t.rngs.load_state_dict(self._start["rngs"][i])
        t.monitoring = self.monitoring
        try:
            t._check_finite(stat, value)
        except TrainingDiverged as e:
            self.failed[seed] = f"{type(e).__name__}: {e}"

    def _mark(self) -> None:
        """Keep what `_stop` puts back: D's weights and Adam state (copied into the last iteration's copies while
        the seeds are the same) and every seed's random streams, at the start of the iteration."""
        live = [p.detach() for p in self.nets["D"].params] + self.optims["D"].tensors()
        last = self._start
        if last is not None and len(last["live"]) == len(live) and all(a is b for a, b in zip(last["live"], live)):
            torch._foreach_copy_(last["copies"], live)
            copies = last["copies"]
        else:
            copies = [v.clone() for v in live]
        n = len(self.nets["D"].params)
        self._start = {"live": live, "copies": copies, "D": (copies[:n], copies[n:]),
                       "rngs": [t.rngs.state_dict() for t in self._live()]}

    def _keep(self, keep: list[int], stats: dict) -> torch.Tensor:
        """Go on with the seeds at batch indices `keep` only: nets, optimizers, this iteration's stats. Returns
        `keep` as an index tensor."""
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        self.seeds = [self.seeds[i] for i in keep]
        for name, net in self.nets.items():
            net.keep(index)
            self.optims[name].keep(net.params, index)
        for k, v in stats.items():
            stats[k] = v[index.to(v.device)]
        return index

    # ---- whole iterations ------------------------------------------------------------------------------------------
    def evaluates(self, step: int) -> bool:
        return step % self.cfg.viz.metrics_every == 0 or step == self.cfg.optim.iters

    def step(self) -> dict[int, dict[str, float]]:
        """One iteration for every seed still training: `optim.d_steps` D phases, one G phase, then each seed's
        stats (slash-keyed floats, the keys and order of its Trainer's), evaluation and snapshot."""
        stats: dict[str, torch.Tensor] = {}
        self.monitoring = self.iteration == 0 or self.evaluates(self.iteration + 1)
        self._set_lr()
        self._mark()
        real = None
        for _ in range(self.cfg.optim.d_steps):
            if self.seeds:
                real = self.d_phase(stats)
        if self.seeds:
            self.g_phase(stats, real)
        self.iteration += 1
        if not self.seeds:
            return {}
        keys = list(stats)
        table = torch.stack([stats[k].double() for k in keys]).cpu().tolist()       # (keys, S): one host read
        lr, evaluates = self.optims["G"].lr, self.evaluates(self.iteration)
        out = {}
        for i, t in enumerate(self._live()):
            row = {k: table[j][i] for j, k in enumerate(keys)}
            row["step"], row["lr/g"] = self.iteration, lr
            t.iteration, t.monitoring = self.iteration, self.monitoring
            if evaluates or self.iteration % t.snapshot_every == 0:
                self._sync(i, optimizers=False)
            if evaluates:
                row.update(t.evaluate())
            t.record(row)
            t.after_iteration()
            out[self.seeds[i]] = row
        return out

    def run(self, n: int, progress_fn=None) -> None:
        """n iterations (fewer if every seed stopped); `progress_fn(done, n)` after each."""
        for i in range(n):
            if not self.seeds:
                break
            self.step()
            if progress_fn is not None:
                progress_fn(i + 1, n)

    # ---- each seed's Trainer --------------------------------------------------------------------------------------
    def _sync(self, i: int, optimizers: bool = True) -> None:
        """Seed i's weights (and Adam state and learning rates) into its Trainer."""
        t = self.trainers[self.seeds[i]]
        with torch.no_grad():
            for name, net in self.nets.items():
                for p, stacked in zip(t.nets[name].parameters(), net.params):
                    p.copy_(unstacked(stacked, i, p))
        if not optimizers:
            return
        for name in self.nets:
            t.optims[name].param_groups[0]["lr"] = self.optims[name].lr
            t.optims[name].state = defaultdict(dict, self.optims[name].seed_state(i, list(t.nets[name].parameters())))

    def trainer(self, seed: int) -> Trainer:
        """Seed `seed`'s Trainer as a run of that seed would have it now (a failed seed's: as it stopped)."""
        if seed in self.seeds:
            self._sync(self.seeds.index(seed))
        return self.trainers[seed]
