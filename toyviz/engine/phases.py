"""The phase structure both trainers share (the toy's `Trainer`, `toyviz.image`'s `ImageTrainer`).

One iteration is a D half then a G half, top to bottom:

    step_d():  `optim.d_steps` × d_phase        (MDGAN: manifold_phase, which also updates G and E)
    step_g():  g_phase                          (MDGAN: diffusion_phase, which also updates D2)
               then the iteration is complete: counter + 1, statistics read, evaluation, snapshot, callbacks

`step()` is `step_d()` then `step_g()`. Each half can be called alone (the page's "Step D" / "Step G"):
- the counter `iteration` counts complete iterations (G halves); a D half alone leaves it unchanged, and the
  learning-rate schedule, the regularizer weights and the snapshot rule all read it, so a D half taken twice
  runs at the same schedule point both times;
- the G half uses the real batch of this iteration's D half (mode regularizers, unrolled D, feature matching);
  a G half with no D half before it draws that batch itself;
- that half-step state (`d_phases`, the pending real batch) is saved in checkpoints, so a run saved between the
  halves resumes exactly;
- MDGAN's halves each update both players, so its halves are refused (`half_steps_refused`).

Inside a phase the statistics are tensors (`stats["loss/d"] = loss.detach()`); they are read into floats once,
after the G half (`_read`), so a phase makes no host read for its statistics. The one host read a phase keeps is
the finiteness check before each optimizer update (`_check_finite`): a loss that is NaN, infinite or beyond
±`MAX_LOSS` (an explosion that is still finite) raises `TrainingDiverged` before the update. An iteration's first
half keeps a copy of what the iteration changes before its last check (D's weights, buffers and optimizer; every
net under MDGAN; the other nets' buffers, the regularizer state and the random streams), and a divergence in
either half restores it, so the trainer is back at the end of step N when the message says "the weights are those
of step N" (of G and D alike: when loss/g diverges, D has already taken that iteration's update).

Regularizers come from the one registry (`regularizers.REGISTRY`): a phase builds a `StepContext` and every
registry term whose player matches and whose weight is non-zero joins the loss, logged under `reg/<name>`.
The techniques that change the procedure itself (K+1 classifier D, unrolled D, mode regularizers with the encoder
E, MDGAN) are named parts of the phases. Callbacks (`trainer.Callback`) add numbers on evaluation steps and see
every finished step; the engine never imports raster or drawing code.

History: `history` holds each finished step's statistics, bounded in memory: every evaluation step (a key
"eval/…") is kept, and of the other steps the last `HISTORY_WINDOW`; when more than 1.1 × HISTORY_WINDOW of those
accumulate, the oldest are dropped down to HISTORY_WINDOW. The rule reads only the list, so a resumed trainer holds
the list the uninterrupted one holds. The complete record is the run folder's stats.jsonl, to which the writers
append each step before it can be dropped (a run folder is written at least every HISTORY_WINDOW // 2 steps).

A subclass provides the nets (`self.nets`, with "G" and "D", "E" for the mode regularizers and MDGAN, "D2" for
MDGAN), optimizers (`self.optims`), `self.loss`, `self.rngs` (RandomStreams), `self.device`, and the hooks below.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Optional, Sequence

import torch

from .random_streams import RandomStreams
from .regularizers import REGISTRY, SINGLE_PROCESS, StepContext, mode_regularizer_terms, reconstruction_distance


def read_checkpoint(path, fmt: str, what: str) -> dict:
    """A checkpoint's dict, loaded with `weights_only=True` (tensors and plain values, never code); ValueError
    "PATH: not a WHAT" when the file is not a checkpoint of format `fmt`."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a {what} ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        raise ValueError(f"{path}: not a {what}")
    return ck


def read_floats(stats: dict, packed: Optional[bool] = None) -> dict[str, float]:
    """`stats` (tensors and numbers) as Python floats. `packed` (by default: when the tensors are on one device
    that is not the CPU) stacks the tensors and copies them once, since each read of a device tensor is a round
    trip that waits for the device; the same floats either way (float32 → float64 is exact)."""
    tensors = [v for v in stats.values() if torch.is_tensor(v)]
    if packed is None:
        packed = bool(tensors) and tensors[0].device.type != "cpu"
    if not packed or not tensors or any(t.device != tensors[0].device for t in tensors):
        return {k: float(v) for k, v in stats.items()}
    values = iter(torch.stack([t.reshape(()).double() for t in tensors]).tolist())
    return {k: next(values) if torch.is_tensor(v) else float(v) for k, v in stats.items()}


HISTORY_WINDOW = 10_000   # non-evaluation steps of statistics kept in memory (about 5 KB each on ring8)
MAX_LOSS = 1e6      # |loss| beyond this is divergence too: no objective here reaches it in a run that still learns


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite or beyond ±MAX_LOSS; the trainer (`trainer`, set once it is rolled back) is
    at its last finite step: weights, optimizers, snapshots and history, ready to be saved."""

    def __init__(self, message: str, trainer=None):
        super().__init__(message)
        self.trainer = trainer


class PhasedTrainer:
    """D phase(s) then G phase, each half callable alone; see the module docstring for the contract."""

    loss_names = ("G", "D")
    nets: dict[str, torch.nn.Module]
    optims: dict[str, torch.optim.Optimizer]
    rngs: RandomStreams
    dist = SINGLE_PROCESS

    def _init_state(self, callbacks: Sequence) -> None:
        self.callbacks = list(callbacks)
        self.reg_state: dict[str, torch.Tensor] = {}
        self.iteration = 0
        self.history: list[dict[str, float]] = []
        self.monitoring = True            # regularizers log their diagnostic monitors this iteration
        self.d_phases = 0                 # D phases taken in the iteration under way
        self.pending_real: Optional[torch.Tensor] = None     # the real batch of this iteration's D half
        self._stats: dict = {}           # statistics of the iteration under way (tensors until read)
        self._rollback: Optional[dict] = None   # the state at the start of the iteration under way
        self.graph_step = None            # a GraphStep (engine/graph_step.py) when optim.cuda_graph is on
        self.checks: Optional[list] = None  # inside a graph-ready step: the losses checked after it, in order
        self.current_lr: dict[str, float] = {}   # each optimizer's learning rate as last set (a float)

    # ---- hooks a trainer defines -------------------------------------------------------------------------------
    def real_for_d(self) -> torch.Tensor:
        """The real batch of a D phase (the K+1 classifier also keeps its labels)."""
        raise NotImplementedError

    def latent_batch(self) -> torch.Tensor:
        raise NotImplementedError

    def as_d_input(self, x: torch.Tensor) -> torch.Tensor:
        """What D reads of a batch of samples (PacGAN packs them); the identity by default."""
        return x

    def trained(self, name: str) -> torch.nn.Module:
        """The module to call for a net that this backward updates (a data-parallel wrapper, or the net)."""
        return self.nets[name]

    def features_of(self, net, x: torch.Tensor, upto: Optional[int] = None):
        """(output, Features) of a D on D-input x; `upto` stops after that hidden layer (output None)."""
        return net.forward_features(x, upto=upto)

    def d_objective(self, real: torch.Tensor, fake: torch.Tensor, stats: dict):
        """D's loss on a real and a fake batch: (loss, real_out, fake_out, real_feats, fake_feats)."""
        D = self.trained("D")
        real_out, real_feats = self.features_of(D, self.as_d_input(real))
        fake_out, fake_feats = self.features_of(D, self.as_d_input(fake))
        return self.loss.d(real_out, fake_out, self.cfg.reg.real_target), real_out, fake_out, real_feats, fake_feats

    def g_objective(self, real: torch.Tensor, fake: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        """G's adversarial loss given D's output on G's batch."""
        return self.loss.g(fake_out)

    def metrics_every(self) -> int:
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        raise NotImplementedError

    def after_iteration(self) -> None:
        """Called once an iteration is complete and logged (the toy trainer takes its snapshots here)."""

    # ---- shared pieces of the phases ---------------------------------------------------------------------------
    @property
    def G(self) -> torch.nn.Module:
        return self.nets["G"]

    @property
    def D(self) -> torch.nn.Module:
        return self.nets["D"]

    def _set_lr(self) -> None:
        """The schedule's learning rate into each optimizer: a float, or written into the 0-d lr tensor of a
        graph-ready step's Adam (outside the graph, and only when it changes: a write is a kernel launch)."""
        o = self.cfg.optim
        frac = min(self.iteration / max(o.iters, 1), 1.0) if o.lr_schedule == "linear" else 0.0
        for name, opt in self.optims.items():
            lr = self.base_lr[name] + (o.lr_floor - self.base_lr[name]) * frac
            for group in opt.param_groups:
                if not torch.is_tensor(group["lr"]):
                    group["lr"] = lr
                elif self.current_lr.get(name) != lr:
                    group["lr"].fill_(lr)
            self.current_lr[name] = lr

    def context(self, real, fake, net_name: str, real_out=None, fake_out=None, real_feats=None, fake_feats=None,
                z=None) -> StepContext:
        """What the registry regularizers read in this phase; `real` and `fake` as D reads them. In a D phase
        (real_out given) the D is the one this backward updates; in a G phase D is read, not trained."""
        D = self.trained(net_name) if real_out is not None else self.nets[net_name]
        return StepContext(self.cfg, self.iteration, self.as_d_input(real), self.as_d_input(fake), D, self.G,
                           self.rngs["reg"], real_out, fake_out, real_feats, fake_feats, z=z, extra=self.reg_state,
                           net_name=net_name, monitors=self.monitoring,
                           features=lambda x, upto=None: self.features_of(D, x, upto)[1], dist=self.dist)

    def _apply_regularizers(self, player: str, ctx: StepContext, loss: torch.Tensor, stats: dict,
                            prefix: str = "reg") -> torch.Tensor:
        for reg in REGISTRY:
            if reg.player != player:
                continue
            if self.graph_step is not None:        # tensors written outside the step (a schedule moves them)
                if reg.name not in self.graph_step.weights:
                    continue
                w, w64 = self.graph_step.weights[reg.name]
            else:
                w = w64 = reg.weight(self.cfg, self.iteration)
                if w == 0:
                    continue
            value, reg_stats = reg(ctx)
            loss = loss + w * value
            key = f"{prefix}/{reg.name}"
            stats[key] = value.detach()
            stats[f"{key}/weighted"] = w64 * value.detach().double()      # float64, as a Python float product
            stats.update({f"{key}/{k}": v for k, v in reg_stats.items()})
        return loss

    def _check_finite(self, name: str, value: torch.Tensor) -> None:
        v = float(value.detach())
        if not (abs(v) <= MAX_LOSS):                        # also NaN
            beyond = f" (beyond ±{MAX_LOSS:g})" if math.isfinite(v) else ""
            raise TrainingDiverged(f"{name} became {v:.4g}{beyond} at step {self.iteration + 1}; "
                                   f"the weights are those of step {self.iteration}")

    def _update(self, names: tuple[str, ...], loss: torch.Tensor, stat: str) -> None:
        """One backward of `loss`, then a step of each named net's optimizer (after a finiteness check). Inside a
        graph-ready step the check is deferred to after the step (`checks`: no host read inside it) and gradients are
        zeroed in place, so a captured graph finds them in the same tensors at every replay."""
        if self.checks is None:
            self._check_finite(stat, loss)
        else:
            self.checks.append((stat, loss.detach()))
        for name in names:
            self.optims[name].zero_grad(set_to_none=self.checks is None)
        loss.backward()
        for name in names:
            self.optims[name].step()

    def mode_regularizers(self, real: torch.Tensor, stats: dict) -> torch.Tensor:
        """Che et al. 2017: λ1·E‖x − G(E(x))‖² + λ2·E[∓log D(G(E(x)))] (METHODS §3), for G and E alike."""
        r = self.cfg.reg
        recon = self.trained("G")(self.trained("E")(real))
        geometric, mode = mode_regularizer_terms(real, recon, self.D(self.as_d_input(recon)), r.mode_sign)
        stats["reg/mode/geometric"], stats["reg/mode/mode"] = geometric.detach(), mode.detach()
        return r.mode_lambda1 * geometric + r.mode_lambda2 * mode

    # ---- the standard procedure: D phase(s), then G phase --------------------------------------------------------
    def d_phase(self, stats: dict) -> torch.Tensor:
        """D's adversarial loss (or the K+1 classifier's) plus the 'd' regularizers. Returns the real batch."""
        real = self.real_for_d()
        with torch.no_grad():
            fake = self.G(self.latent_batch())
        loss, real_out, fake_out, real_feats, fake_feats = self.d_objective(real, fake, stats)
        stats["loss/d"] = loss.detach()
        ctx = self.context(real, fake, "D", real_out, fake_out, real_feats, fake_feats)
        self._update(("D",), self._apply_regularizers("d", ctx, loss, stats), "loss/d")
        return real

    def g_phase(self, stats: dict, real: torch.Tensor) -> None:
        """G's adversarial loss (dropped when feature matching replaces it), the mode regularizers on `real` with E
        updated in the same backward (E's objective is exactly those terms, the only ones that reach it), then the
        'g' regularizers."""
        z = self.latent_batch()
        fake = self.trained("G")(z)
        fake_out, fake_feats = self.features_of(self.D, self.as_d_input(fake))
        loss = self.g_objective(real, fake, fake_out)
        stats["loss/g"] = loss.detach()
        if self.cfg.reg.feature_matching_replace:
            loss = torch.zeros((), device=self.device)
        names = ("G",)
        if "E" in self.nets:
            loss = loss + self.mode_regularizers(real, stats)
            names = ("G", "E")
        ctx = self.context(real, fake, "D", None, fake_out, None, fake_feats, z=z)
        self._update(names, self._apply_regularizers("g", ctx, loss, stats), "loss/g")

    # ---- MDGAN (Che et al. 2017, METHODS §3): manifold step, then diffusion step ----------------------------------
    def _discriminator_update(self, name: str, real, fake, stats: dict, stat: str, prefix: str) -> None:
        """One update of MDGAN's discriminator `name` on what it should call real and fake: its adversarial loss
        (logged as `stat`) plus the 'd' regularizers (logged under `prefix`)."""
        D = self.trained(name)
        real_out, real_feats = self.features_of(D, self.as_d_input(real))
        fake_out, fake_feats = self.features_of(D, self.as_d_input(fake))
        loss = self.loss.d(real_out, fake_out, self.cfg.reg.real_target)
        stats[stat] = loss.detach()
        ctx = self.context(real, fake, name, real_out, fake_out, real_feats, fake_feats)
        self._update((name,), self._apply_regularizers("d", ctx, loss, stats, prefix=prefix), stat)

    def manifold_phase(self, stats: dict) -> torch.Tensor:
        """D1 (= `D`) separates x from G(E(x)); then G and E minimize λ·‖x − G(E(x))‖² + G's loss on D1(G(E(x)))
        (−log D1(G(E(x))) for ns). Returns the real batch."""
        real = self.real_for_d()
        with torch.no_grad():
            recon = self.G(self.nets["E"](real))
        self._discriminator_update("D", real, recon, stats, "loss/d", "reg")

        recon = self.trained("G")(self.trained("E")(real))
        geometric = reconstruction_distance(real, recon)
        adv = self.loss.g(self.D(self.as_d_input(recon)))
        stats["loss/g_manifold"], stats["reg/mdgan/geometric"] = adv.detach(), geometric.detach()
        self._update(("G", "E"), self.cfg.reg.mdgan_lambda * geometric + adv, "loss/g_manifold")
        return real

    def diffusion_phase(self, stats: dict, real: torch.Tensor) -> None:
        """D2 treats G(E(x)) as real and G(z) as fake; then G minimizes its loss on D2(G(z)) (−log D2(G(z)))."""
        with torch.no_grad():
            recon, fake = self.G(self.nets["E"](real)), self.G(self.latent_batch())
        self._discriminator_update("D2", recon, fake, stats, "loss/d2", "reg/D2")

        z = self.latent_batch()
        fake = self.trained("G")(z)
        fake_out, fake_feats = self.features_of(self.nets["D2"], self.as_d_input(fake))
        loss = self.loss.g(fake_out)
        stats["loss/g"] = loss.detach()
        ctx = self.context(recon, fake, "D2", None, fake_out, None, fake_feats, z=z)
        self._update(("G",), self._apply_regularizers("g", ctx, loss, stats), "loss/g")

    # ---- halves and whole iterations ---------------------------------------------------------------------------
    @property
    def half_steps_refused(self) -> Optional[str]:
        """Why this run's halves cannot be taken apart (None when they can)."""
        if self.cfg.reg.mdgan:
            return ("MDGAN's two halves each update D and G (manifold step: D1 then G and E; diffusion step: D2 "
                    "then G), so one press steps a whole iteration")
        if self.graph_step is not None:
            return "optim.cuda_graph runs each iteration as one captured step, so one press steps a whole iteration"
        return None

    def _begin_half(self) -> None:
        if self.d_phases == 0 and self.pending_real is None:
            self._stats = {}
            self.monitoring = self.iteration == 0 or self.evaluates(self.iteration + 1)
            self._rollback = self._state_to_roll_back()
        self._set_lr()

    # ---- divergence: back to the start of the iteration --------------------------------------------------------
    def _state_to_roll_back(self) -> dict:
        """What an iteration changes before its last finiteness check, kept at its start: the weights and buffers of
        the nets its D half updates (D; every net under MDGAN, whose halves update both players, and in a graph-ready
        step, whose checks come after every update) and their
        optimizers' state, the other nets' buffers (batch norm statistics move in a forward), the regularizer state
        and the random streams. Every one of those tensors is changed in place, so the copy is one list of tensors,
        copied into the previous iteration's copies when they are the same tensors (no allocation)."""
        whole = self.cfg.reg.mdgan or self.graph_step is not None     # a graph-ready step checks after G's update
        updated = [name for name in self.nets if name == "D" or whole]
        optim_state = {name: {p: dict(st) for p, st in self.optims[name].state.items()} for name in updated}
        # the Parameters themselves, not `p.detach()` (a new tensor object each call, which would make every
        # iteration allocate its copies anew)
        live = [p for name in updated for p in self.nets[name].parameters()]
        live += [b for net in self.nets.values() for b in net.buffers()]
        live += [v for state in optim_state.values() for st in state.values() for v in st.values()
                 if torch.is_tensor(v)]
        last = self._rollback
        with torch.no_grad():
            if last is not None and len(last["live"]) == len(live) and \
                    all(a is b for a, b in zip(last["live"], live)):
                copies = last["copies"]
                torch._foreach_copy_(copies, live)
            else:
                copies = [t.detach().clone() for t in live]
        return {"iteration": self.iteration, "live": live, "copies": copies, "optim_state": optim_state,
                "reg_state": {k: v.clone() for k, v in self.reg_state.items()}, "rngs": self.rngs.state_dict()}

    def _roll_back(self, e: TrainingDiverged) -> TrainingDiverged:
        """Put back the state at the start of the iteration (the end of step N) after a divergence in either half;
        returns the exception to raise, which carries the trainer."""
        saved = self._rollback
        if saved is None or saved["iteration"] != self.iteration:
            # resumed from a checkpoint taken between the halves: D's state at the iteration's start is not known
            return TrainingDiverged(f"{e} (D's: after the D half of step {self.iteration + 1}, taken before the "
                                    f"checkpoint this trainer resumed)", self)
        with torch.no_grad():
            torch._foreach_copy_(saved["live"], saved["copies"])
        for name, state in saved["optim_state"].items():
            self.optims[name].state = defaultdict(dict, state)   # drops the state a first update created
        self.reg_state = {k: v.clone() for k, v in saved["reg_state"].items()}
        self.rngs.load_state_dict(saved["rngs"])
        self._stats, self.d_phases, self.pending_real = {}, 0, None
        return TrainingDiverged(str(e), self)

    def step_d(self) -> None:
        """The D half of the iteration under way: `optim.d_steps` D phases (MDGAN: its manifold step)."""
        self._begin_half()
        try:
            if self.cfg.reg.mdgan:
                self.pending_real = self.manifold_phase(self._stats)
            else:
                for _ in range(self.cfg.optim.d_steps):
                    self.pending_real = self.d_phase(self._stats)
        except TrainingDiverged as e:
            raise self._roll_back(e) from None
        self.d_phases += 1

    def step_g(self) -> dict[str, float]:
        """The G half (MDGAN: its diffusion step), which completes the iteration; returns its statistics."""
        self._begin_half()
        try:
            real = self.pending_real if self.pending_real is not None else self.real_for_d()
            if self.cfg.reg.mdgan:
                self.diffusion_phase(self._stats, real)
            else:
                self.g_phase(self._stats, real)
        except TrainingDiverged as e:
            raise self._roll_back(e) from None
        return self._complete()

    def half_step(self, player: str) -> Optional[dict[str, float]]:
        """One press of the page's "Step D" ('d') or "Step G" ('g'); refused with the reason where the halves
        cannot be taken apart. Returns the iteration's statistics when the G half completed it."""
        if self.half_steps_refused:
            raise ValueError(self.half_steps_refused)
        if player not in ("d", "g"):
            raise ValueError(f"player must be 'd' or 'g' (got {player!r})")
        if player == "d":
            self.step_d()
            return None
        return self.step_g()

    def step(self) -> dict[str, float]:
        """One iteration: `optim.d_steps` D updates, then one G update (MDGAN: manifold, then diffusion step).
        Returns slash-keyed floats. With `optim.cuda_graph` the same phases run as one graph-ready step."""
        if self.graph_step is not None:
            return self.graph_step.step()
        self.step_d()
        return self.step_g()

    def _complete(self) -> dict[str, float]:
        self.iteration += 1
        stats = self._read(self._stats)
        self._stats, self.d_phases, self.pending_real = {}, 0, None
        stats["step"] = self.iteration
        stats["lr/g"] = self.current_lr["G"]
        if self.evaluates(self.iteration):
            stats.update(self.evaluate())
        self.record(stats)
        self.after_iteration()
        for cb in self.callbacks:
            cb.after_step(self, stats)
        return stats

    def record(self, stats: dict[str, float]) -> None:
        """Keep a complete iteration's statistics in `history`, within its bound (module docstring): the one way
        in, for this trainer's own steps and a seed batch's alike."""
        self.history.append(stats)
        self._bound_history()

    def _bound_history(self) -> None:
        """Drop the oldest non-evaluation steps once more than 1.1 × HISTORY_WINDOW are held (module docstring)."""
        if len(self.history) <= HISTORY_WINDOW + HISTORY_WINDOW // 10:
            return
        plain = [i for i, s in enumerate(self.history) if not any(k.startswith("eval/") for k in s)]
        if len(plain) > HISTORY_WINDOW + HISTORY_WINDOW // 10:
            drop = set(plain[:len(plain) - HISTORY_WINDOW])
            self.history = [s for i, s in enumerate(self.history) if i not in drop]

    def _read(self, stats: dict) -> dict[str, float]:
        """The iteration's statistics as Python floats (tensors read here, after the step; `read_floats`)."""
        return read_floats(stats)

    def evaluates(self, step: int) -> bool:
        """Whether the trainer evaluates after `step` steps: every `metrics_every()`, and at the last step."""
        return step % self.metrics_every() == 0 or step == self.cfg.optim.iters

    def run(self, n: int, progress_fn=None, abort_fn=None) -> list[dict[str, float]]:
        """n steps; `progress_fn(done, n, stats)` after each; stops early when `abort_fn()` returns True."""
        out = []
        for i in range(n):
            if abort_fn is not None and abort_fn():
                break
            out.append(self.step())
            if progress_fn is not None:
                progress_fn(i + 1, n, out[-1])
        return out

    # ---- checkpoints -------------------------------------------------------------------------------------------
    def state_of_nets(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                for name, net in self.nets.items()}

    def training_state(self) -> dict:
        """What both trainers' checkpoints hold: nets, optimizers, random streams, regularizer state, counter,
        history and the half-step state."""
        return {
            "iteration": self.iteration,
            "nets": self.state_of_nets(),
            "optims": {k: o.state_dict() for k, o in self.optims.items()},
            "rngs": self.rngs.state_dict(),
            "reg_state": {k: v.detach().cpu() for k, v in self.reg_state.items()},
            "history": self.history,
            "half_step": {"d_phases": self.d_phases,
                          "pending_real": None if self.pending_real is None else self.pending_real.detach().cpu(),
                          "stats": {k: torch.as_tensor(v).detach().cpu() for k, v in self._stats.items()},
                          "monitoring": self.monitoring},
        }

    def load_training_state(self, ck: dict) -> None:
        """Restore `training_state()`; checkpoints written before half steps existed hold none (a whole step)."""
        for name, sd in ck["nets"].items():
            self.nets[name].load_state_dict(sd)
        for name, sd in ck["optims"].items():
            self.optims[name].load_state_dict(sd)
        self.rngs.load_state_dict(ck["rngs"])
        self.reg_state = {k: v.to(self.device) for k, v in ck["reg_state"].items()}
        self.iteration = ck["iteration"]
        self.history = list(ck["history"])
        half = ck.get("half_step") or {}
        self.d_phases = int(half.get("d_phases", 0))
        real = half.get("pending_real")
        self.pending_real = None if real is None else real.to(self.device)
        self._stats = {k: v.to(self.device) for k, v in (half.get("stats") or {}).items()}
        self.monitoring = bool(half.get("monitoring", True))
        self._rollback = None
        self.current_lr = {}
        if self.graph_step is not None:
            self.graph_step.after_load()
