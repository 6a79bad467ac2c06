"""The image trainer: the phases of `engine.phases.PhasedTrainer` over DCGAN nets, with the toy's losses and
the one regularizer registry (BRE, gradient penalty, feature matching, historical averaging), the mode
regularizers and MDGAN's manifold and diffusion phases, linear lr decay, evaluation every k steps, exact resume,
and data parallelism through `distributed.DistContext`.

Seeds: the run's `RandomStreams` (data, noise, regularizer randomness), identical on every rank (each rank keeps
its slice of the global batch); nets are initialised under a forked global RNG seeded from the config.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from ..engine.atomic_files import atomic_torch_save
from ..engine.graph_step import GraphStep, make_adam
from ..engine.losses import get_loss, k_plus_one_real_logit, k_plus_one_supervised_loss, k_plus_one_unsupervised_loss
from ..engine.phases import PhasedTrainer, read_checkpoint
from ..engine.random_streams import RandomStreams, to_run_device
from ..engine.regularizers import bre_layer_indices
from ..engine.trainer import SEEDED_INIT
from . import classifier as clf
from .config import ImageConfig
from .data import make_image_data, to_float
from .distributed import DistContext
from .metrics import evaluate_images
from .nets import Discriminator, Encoder, Generator

FORMAT = "toyviz-image-checkpoint-1"


class ImageTrainer(PhasedTrainer):
    """`step() -> dict[str, float]`, `step_d()` / `step_g()`, `run(n, progress_fn)`, `evaluate()`,
    `grid_images()`, `save(path)` / `ImageTrainer.load(path)`. `.nets` holds the plain modules, `.wrapped` their
    DDP wrappers (the same modules with one process): a backward that updates a net goes through its wrapper."""

    def __init__(self, cfg: ImageConfig, dist: Optional[DistContext] = None, classifier_path=None,
                 callbacks: Sequence = ()):
        self.cfg = cfg.validate()
        self._init_state(callbacks)
        self.dist = dist or DistContext()
        o, r, e = cfg.optim, cfg.reg, cfg.eval
        if o.cuda_graph and self.dist.world > 1:
            raise ValueError(f"optim.cuda_graph captures one process's step; this run has {self.dist.world} "
                             f"processes (run it without torchrun, or set optim.cuda_graph=false)")
        if o.batch_size % self.dist.world:
            raise ValueError(f"optim.batch_size ({o.batch_size}) must be a multiple of the {self.dist.world} processes")
        self.device = torch.device(cfg.device)
        self.data = make_image_data(cfg.data)
        if r.semi_supervised and self.data.n_classes is None:
            raise ValueError(f"reg.semi_supervised needs labels, and {cfg.data.name} has none")
        c = self.data.channels
        with SEEDED_INIT, torch.random.fork_rng(devices=[]):      # one global RNG: one seeded build at a time
            torch.manual_seed(cfg.seed)
            self.nets: dict[str, torch.nn.Module] = {
                "G": Generator(cfg, c), "D": Discriminator(cfg, c, self.data.n_classes if r.semi_supervised else 1)}
            if r.mdgan or r.mode_lambda1 > 0 or r.mode_lambda2 > 0:
                self.nets["E"] = Encoder(cfg, c)
            if r.mdgan:
                self.nets["D2"] = Discriminator(cfg, c)
        for net in self.nets.values():
            net.to(self.device)
        if r.bre.weight > 0:
            bre_layer_indices(r.bre.layers, self.D.depth)        # a bad layer list fails here, not at step 1
        self.wrapped = {k: self.dist.wrap(v) for k, v in self.nets.items()}
        lrs = {"G": o.lr_g, "E": o.lr_g, "D": o.lr_d, "D2": o.lr_d}
        self.base_lr = {k: lrs[k] for k in self.nets}
        self.optims = {k: make_adam(v.parameters(), lrs[k], (o.beta1, o.beta2), self.device, o.cuda_graph)
                       for k, v in self.nets.items()}
        self.loss = get_loss(cfg.loss)
        self.rngs = RandomStreams(cfg.seed, self.device if o.cuda_graph else "cpu")   # a captured step draws there
        self.z_eval = torch.randn(e.samples, cfg.nets.latent_dim, generator=self.rngs.fixed("eval"))
        if r.semi_supervised:
            self.labelled = self._labelled_subset(r.labelled_per_class, self.rngs.fixed("labelled"))
        self.classifier_path = classifier_path
        self.classifier, self.classifier_accuracy = None, None
        self.graph_step = GraphStep(self) if o.cuda_graph else None

    # ---- batches: the global batch from the shared generators, this rank's slice of it ---------------------------
    def real_batch(self) -> torch.Tensor:
        x, _ = self.data.sample(self.cfg.optim.batch_size, self.rngs["data"])
        return to_run_device(self.dist.shard(x), self.device)

    def noise(self) -> torch.Tensor:
        g = self.rngs["noise"]
        z = torch.randn(self.cfg.optim.batch_size, self.cfg.nets.latent_dim, generator=g, device=g.device)
        return to_run_device(self.dist.shard(z), self.device)

    def _labelled_subset(self, per_class: int, g: torch.Generator):
        y = self.data.train_labels
        idx = torch.cat([torch.nonzero(y == k).flatten()[torch.randperm(int((y == k).sum()), generator=g)[:per_class]]
                         for k in range(self.data.n_classes)])
        return self.data.train[idx], y[idx]

    def labelled_batch(self):
        x, y = self.labelled
        idx = torch.randint(len(x), (self.cfg.optim.batch_size,), generator=self.rngs["data"])
        return self.dist.shard(to_float(x[idx])).to(self.device), self.dist.shard(y[idx]).to(self.device)

    # ---- the image scale's hooks into the phases ----------------------------------------------------------------
    real_for_d = real_batch
    latent_batch = noise

    def trained(self, name: str) -> torch.nn.Module:
        return self.wrapped[name]

    def features_of(self, net, x, upto=None):
        return net(x, features=True, upto=upto)

    def d_objective(self, real, fake, stats):
        if not self.cfg.reg.semi_supervised:
            return super().d_objective(real, fake, stats)
        D = self.trained("D")
        real_out, real_feats = D(real, features=True)
        fake_out, fake_feats = D(fake, features=True)
        lab_x, lab_y = self.labelled_batch()
        sup = k_plus_one_supervised_loss(D(lab_x), lab_y)
        stats["loss/d_supervised"] = sup.detach()
        return k_plus_one_unsupervised_loss(real_out, fake_out) + sup, real_out, fake_out, real_feats, fake_feats

    def g_objective(self, real, fake, fake_out):
        return self.loss.g(k_plus_one_real_logit(fake_out) if self.cfg.reg.semi_supervised else fake_out)

    def metrics_every(self) -> int:
        return self.cfg.eval.metrics_every

    def _read(self, stats: dict) -> dict[str, float]:
        """Floats averaged over ranks."""
        return self.dist.mean_stats(super()._read(stats), self.device)

    # ---- evaluation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: torch.Tensor, chunk: int = 500) -> torch.Tensor:
        """G (eval mode: batch norm's running statistics) on z, on the CPU."""
        self.G.eval()
        try:
            return torch.cat([self.G(z[i:i + chunk].to(self.device)).cpu() for i in range(0, len(z), chunk)])
        finally:
            self.G.train()

    def grid_images(self) -> torch.Tensor:
        """The sample grid's images: G on the first `eval.grid` evaluation codes (the same at every step)."""
        return self.generate(self.z_eval[:self.cfg.eval.grid])

    def evaluate(self) -> dict[str, float]:
        """Metrics on G(z_eval): each rank generates its slice, rank 0 gathers and scores (others return {})."""
        n = len(self.z_eval) // self.dist.world * self.dist.world
        images = self.dist.gather(self.generate(self.dist.shard(self.z_eval[:n])).to(self.device)).cpu()
        if not self.dist.is_main:
            return {}
        e, out = self.cfg.eval, {}
        if self.data.n_classes == 10 or self.data.name == "stacked-digits":
            if self.classifier is None and self.data.name != "cifar10":
                self.classifier, self.classifier_accuracy = clf.load_or_train(self.data, self.classifier_path)
            if self.classifier is not None:
                out["eval/classifier_accuracy"] = self.classifier_accuracy
        out.update(evaluate_images(images, self.data, self.classifier, missing_mass_steps=e.missing_mass_steps,
                                   noise=e.missing_mass_noise, threshold=e.missing_mass_threshold, seed=self.cfg.seed))
        if self.cfg.reg.semi_supervised:
            out["eval/test_accuracy"] = self.test_accuracy()
        return out

    @torch.no_grad()
    def test_accuracy(self) -> float:
        """The K+1 discriminator as a classifier: accuracy of argmax over its K logits on the test split."""
        self.D.eval()
        try:
            x, y = self.data.test, self.data.test_labels
            pred = torch.cat([self.D(to_float(x[i:i + 500]).to(self.device)).argmax(1).cpu()
                              for i in range(0, len(x), 500)])
        finally:
            self.D.train()
        return float((pred == y).float().mean())

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"format": FORMAT, "config": self.cfg.to_dict(), **self.training_state()}

    def save(self, path) -> None:
        atomic_torch_save(self.state_dict(), path)

    def load_state_dict(self, ck: dict) -> None:
        self.load_training_state(ck)

    @classmethod
    def load(cls, path, device: Optional[str] = None, dist: Optional[DistContext] = None,
             classifier_path=None, iters: Optional[int] = None) -> "ImageTrainer":
        """Rebuild from a checkpoint (state dicts + config, `weights_only=True`); `iters` extends the run."""
        ck = read_checkpoint(path, FORMAT, "toyviz image checkpoint")
        cfg = ImageConfig.from_dict(ck["config"])
        if device is not None:
            cfg.device = device
        if iters is not None:
            cfg.optim.iters = iters
        t = cls(cfg, dist, classifier_path)
        t.load_state_dict(ck)
        return t
