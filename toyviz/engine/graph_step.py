"""A training step without launch overhead (`optim.cuda_graph`): the whole iteration of `phases.PhasedTrainer`
(its D phase(s), G phase, the registry regularizers and every optimizer update) captured once as a CUDA graph and
replayed, so a step costs one graph launch instead of hundreds of small kernel launches. Both trainers use it.

What capture needs, and where it is met:
- random draws on the device, inside the graph: the run's training `RandomStreams` live on its device
  (`random_streams`), each registered with the graph (`CUDAGraph.register_generator_state`), so every replay
  draws fresh numbers (replay advances each generator's offset); the draw sites draw on their generator's
  device, and the data's tensors are copied there once (`data.device_copies`). No pool is drawn ahead: each replay
  draws exactly what its step reads;
- tensor learning rates: Adam with `lr` a 0-d tensor on the device and `capturable=True` (`make_adam`); the
  schedule writes that tensor outside the graph (`PhasedTrainer._set_lr`); likewise each registry regularizer's
  weight λ_t is a pair of 0-d tensors (the loss's dtype, and float64 for its logged product) written before each
  step (`weights`), so a weight schedule (BRE's linear decay) needs no new capture. A regularizer joins the step
  when its configured weight is non-zero (`weight(cfg, 0)`): a schedule that reaches 0 keeps computing a term
  weighted 0, where the eager step drops it;
- no host read inside the step: the phases defer their finiteness checks (`PhasedTrainer._update` appends the
  checked losses to `trainer.checks`); the statistics and those losses are packed into one float64 vector inside
  the step and read with one copy after it, and a divergence rolls the whole iteration back, as the eager step does
  (every net's weights and optimizer state are kept at the iteration's start, since all of them have moved);
- static buffers: gradients are zeroed in place (`zero_grad(set_to_none=False)`), so a replay finds them in the
  tensors the capture wrote; optimizer states and gradients exist before capture (the warm-up makes them).

Warm-up (torch's recipe for whole-network capture): the first `WARMUP` iterations run the same step eagerly on a
side stream, so lazy initialisations happen outside the graph. The step differs on the first and the evaluation
steps (`trainer.monitoring`: the regularizers' diagnostic monitors), so each of the two variants gets its own graph,
captured the first time it is needed; evaluation steps log exactly the statistics eager steps log.

Outside the graph: the learning-rate write, the statistics read, the divergence check and rollback, evaluation,
snapshots, callbacks, checkpoints.

On a device that is not CUDA the same graph-ready step runs eagerly (nothing to capture). On the CPU its streams
are the ordinary CPU streams and Adam with a tensor lr makes the same updates, so it gives the ordinary step's
numbers (tests/test_graph_step.py compares 20 steps). On CUDA its device streams draw other numbers than the CPU
streams of an ordinary run, by design: a captured run is compared with the same graph-ready step run eagerly on the
same device (`GraphStep(trainer, capture=False)`), which draws the same numbers.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch

from .phases import PhasedTrainer, TrainingDiverged
from .regularizers import REGISTRY

WARMUP = 3      # eager iterations before the first capture (torch's examples use 3)


def make_adam(params, lr: float, betas: tuple[float, float], device: torch.device, graph: bool) -> torch.optim.Adam:
    """Adam as both trainers build it. For a graph-ready step (`graph`) its learning rate is a 0-d tensor on the
    device (the schedule writes into it), and on CUDA it is `capturable` (step counters on the device too, bias
    corrections computed there). torch refuses a tensor lr with the multi-tensor ("foreach") path unless capturable,
    hence foreach only on CUDA."""
    if not graph:
        return torch.optim.Adam(params, lr=lr, betas=betas)
    cuda = device.type == "cuda"
    return torch.optim.Adam(params, lr=lr_tensor(lr, device), betas=betas, capturable=cuda, foreach=cuda)


def lr_tensor(lr: float, device: torch.device) -> torch.Tensor:
    """A graph-ready Adam's learning rate: float64 where Adam reads it on the host (not capturable), so the update
    uses the float the ordinary step uses; float32 on CUDA, where a capturable Adam computes its bias corrections."""
    return torch.tensor(lr, device=device, dtype=torch.float32 if device.type == "cuda" else torch.float64)


class GraphStep:
    """`step()`: one iteration of `trainer` as a graph-ready step, captured and replayed on CUDA (`capture`, by
    default whether the trainer's device is CUDA), run eagerly otherwise. `trainer.step()` calls it when the config
    has `optim.cuda_graph`."""

    def __init__(self, trainer: PhasedTrainer, capture: Optional[bool] = None):
        self.trainer = trainer
        self.capture = trainer.device.type == "cuda" if capture is None else capture
        if self.capture and trainer.device.type != "cuda":
            raise ValueError(f"optim.cuda_graph captures on a CUDA device (the run's device is {trainer.device})")
        self.warmup = WARMUP if self.capture else 0
        self.graphs: dict[bool, tuple] = {}        # monitoring -> (graph, statistic keys, checked names, packed)
        self.stream = torch.cuda.Stream(trainer.device) if self.capture else None
        self.weights = {reg.name: (torch.zeros((), device=trainer.device),
                                   torch.zeros((), device=trainer.device, dtype=torch.float64))
                        for reg in REGISTRY if reg.weight(trainer.cfg, 0) != 0}
        self.written: dict[str, float] = {}         # the value in each weight tensor (a write is a kernel launch)

    def _write_weights(self) -> None:
        """Each regularizer's λ at this iteration into its tensors, outside the step; only when it changed."""
        t = self.trainer
        for reg in REGISTRY:
            if reg.name in self.weights:
                w = reg.weight(t.cfg, t.iteration)
                if self.written.get(reg.name) != w:
                    for tensor in self.weights[reg.name]:
                        tensor.fill_(w)
                    self.written[reg.name] = w

    def body(self) -> tuple[list[str], list[str], torch.Tensor]:
        """The step a graph captures: `optim.d_steps` D phases and the G phase; returns the statistics' keys, the
        checked losses' names and one float64 vector of both (statistics first), read after the step."""
        t = self.trainer
        stats: dict[str, torch.Tensor] = {}
        t.checks = []
        try:
            with warnings.catch_warnings():
                # a capturable Adam stepped outside a capture warns once: the warm-up does that by design
                warnings.filterwarnings("ignore", message=".*capturable=True.*")
                real = None
                for _ in range(t.cfg.optim.d_steps):
                    real = t.d_phase(stats)
                t.g_phase(stats, real)
            values = list(stats.values()) + [loss for _, loss in t.checks]
            packed = torch.stack([v.reshape(()).double() for v in values])
            return list(stats), [name for name, _ in t.checks], packed
        finally:
            t.checks = None

    def _capture(self) -> tuple:
        """Capture the step for the current `monitoring` (its kernels are recorded, not run)."""
        t = self.trainer
        graph = torch.cuda.CUDAGraph()
        for generator in t.rngs.generators.values():
            graph.register_generator_state(generator)
        try:
            with torch.cuda.graph(graph):
                captured = (graph, *self.body())
        except Exception as e:     # say which option to turn off; torch's message follows
            raise RuntimeError(f"optim.cuda_graph: torch could not capture this training step ({type(e).__name__}: "
                               f"{' '.join(str(e).split())[:300]}); train with optim.cuda_graph=false") from e
        self.graphs[t.monitoring] = captured
        return captured

    def _run(self) -> tuple[list[str], list[str], torch.Tensor]:
        if not self.capture:
            return self.body()
        if self.warmup > 0:
            self.warmup -= 1
            current = torch.cuda.current_stream(self.trainer.device)
            self.stream.wait_stream(current)
            with torch.cuda.stream(self.stream):
                out = self.body()
            current.wait_stream(self.stream)
            return out
        graph, keys, checks, packed = self.graphs.get(self.trainer.monitoring) or self._capture()
        graph.replay()
        return keys, checks, packed

    def step(self) -> dict[str, float]:
        """One iteration: learning rates set, the step run (replayed), its numbers read once, the deferred checks
        (a divergence rolls the iteration back and raises `TrainingDiverged`), then the trainer completes it."""
        t = self.trainer
        t._begin_half()
        self._write_weights()
        keys, checks, packed = self._run()
        values = packed.cpu()                      # the one host read of the step
        try:
            for i, name in enumerate(checks):
                t._check_finite(name, values[len(keys) + i])
        except TrainingDiverged as e:
            self.reset()          # the rollback may drop optimizer state the graphs point at
            raise t._roll_back(e) from None
        t._stats = dict(zip(keys, values[:len(keys)].tolist()))
        return t._complete()

    def reset(self) -> None:
        """Forget the graphs: the next steps warm up and capture again (after a rollback or a checkpoint load,
        which may replace tensors a graph reads)."""
        self.graphs.clear()
        self.warmup = WARMUP if self.capture else 0

    def after_load(self) -> None:
        """After the trainer loaded a checkpoint: the optimizers' groups as `make_adam` makes them (a checkpoint is
        read onto the CPU, and one written without the option holds float lrs and no capturable flag), and new
        graphs."""
        t = self.trainer
        cuda = t.device.type == "cuda"
        for opt in t.optims.values():
            for group in opt.param_groups:
                group.update(lr=lr_tensor(float(group["lr"]), t.device), capturable=cuda, foreach=cuda)
        self.reset()
