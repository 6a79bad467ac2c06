"""The image trainer: explicit D phase(s) then G phase over DCGAN nets, the toy's losses and regularizer terms,
linear lr decay, evaluation every k steps, exact resume, and data parallelism through `distributed.DistContext`.

Seeds: one `torch.Generator` each for data, noise and regularizer randomness, identical on every rank (each rank
keeps its slice of the global batch); nets are initialised under a forked global RNG seeded from the config.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..engine.atomic_files import atomic_torch_save
from ..engine.losses import get_loss, k_plus_one_real_logit, k_plus_one_supervised_loss, k_plus_one_unsupervised_loss
from ..engine.regularizers import (
    HistoricalAveraging,
    StepContext,
    bre,
    feature_matching_loss,
    gradient_penalty,
    interpolate,
    mode_regularizer_terms,
)
from ..engine.trainer import TrainingDiverged
from . import classifier as clf
from .config import ImageConfig
from .data import make_image_data, to_float
from .distributed import DistContext
from .metrics import evaluate_images
from .nets import Discriminator, Encoder, Generator

FORMAT = "toyviz-image-checkpoint-1"


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def bre_layers(layers, depth: int) -> list[int]:
    """D's hidden conv layers BRE reads: "all", "all_but_first" (the reference code's conv 1..n−2, n counting the
    output layer), or explicit 0-based indices."""
    if layers == "all":
        return list(range(depth))
    if layers == "all_but_first":
        return list(range(1, depth))
    bad = [i for i in layers if not -depth <= i < depth]
    if bad or not layers:
        raise ValueError(f"reg.bre.layers {layers}: D has {depth} conv layers, so indices must lie in 0..{depth - 1}")
    return [i % depth for i in layers]


class ImageTrainer:
    """`step() -> dict[str, float]`, `run(n, progress_fn)`, `evaluate()`, `grid_images()`, `save(path)` /
    `ImageTrainer.load(path)`. `.nets` holds the plain modules, `.wrapped` their DDP wrappers (the same modules
    with one process)."""

    def __init__(self, cfg: ImageConfig, dist: Optional[DistContext] = None, classifier_path=None):
        self.cfg = cfg.validate()
        self.dist = dist or DistContext()
        o, r, e = cfg.optim, cfg.reg, cfg.eval
        if o.batch_size % self.dist.world:
            raise ValueError(f"optim.batch_size ({o.batch_size}) must be a multiple of the {self.dist.world} processes")
        self.device = torch.device(cfg.device)
        self.data = make_image_data(cfg.data)
        if r.semi_supervised and self.data.n_classes is None:
            raise ValueError(f"reg.semi_supervised needs labels, and {cfg.data.name} has none")
        c = self.data.channels
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.nets: dict[str, torch.nn.Module] = {
                "G": Generator(cfg, c), "D": Discriminator(cfg, c, self.data.n_classes if r.semi_supervised else 1)}
            if r.mdgan or r.mode_lambda1 > 0 or r.mode_lambda2 > 0:
                self.nets["E"] = Encoder(cfg, c)
            if r.mdgan:
                self.nets["D2"] = Discriminator(cfg, c)
        for net in self.nets.values():
            net.to(self.device)
        self.bre_layers = bre_layers(r.bre.layers, self.D.depth) if r.bre.weight > 0 else []   # D has ≥ 2 convs
        self.wrapped = {k: self.dist.wrap(v) for k, v in self.nets.items()}
        lrs = {"G": o.lr_g, "E": o.lr_g, "D": o.lr_d, "D2": o.lr_d}
        self.base_lr = {k: lrs[k] for k in self.nets}
        self.optims = {k: torch.optim.Adam(v.parameters(), lr=lrs[k], betas=(o.beta1, o.beta2))
                       for k, v in self.nets.items()}
        self.loss = get_loss(cfg.loss)
        self.rngs = {name: _generator(cfg.seed * 1000 + i) for i, name in enumerate(("data", "noise", "reg"))}
        self.z_eval = torch.randn(e.samples, cfg.nets.latent_dim, generator=_generator(cfg.seed * 1000 + 7))
        if r.semi_supervised:
            self.labelled = self._labelled_subset(r.labelled_per_class, _generator(cfg.seed * 1000 + 17))
        self.reg_state: dict[str, torch.Tensor] = {}
        self.iteration = 0
        self.history: list[dict[str, float]] = []
        self.classifier_path = classifier_path
        self.classifier, self.classifier_accuracy = None, None
        self._last_real = None

    @property
    def G(self) -> Generator:
        return self.nets["G"]

    @property
    def D(self) -> Discriminator:
        return self.nets["D"]

    # ---- batches: the global batch from the shared generators, this rank's slice of it ---------------------------
    def real_batch(self) -> torch.Tensor:
        x, _ = self.data.sample(self.cfg.optim.batch_size, self.rngs["data"])
        return self.dist.shard(x).to(self.device)

    def noise(self) -> torch.Tensor:
        z = torch.randn(self.cfg.optim.batch_size, self.cfg.nets.latent_dim, generator=self.rngs["noise"])
        return self.dist.shard(z).to(self.device)

    def _labelled_subset(self, per_class: int, g: torch.Generator):
        y = self.data.train_labels
        idx = torch.cat([torch.nonzero(y == k).flatten()[torch.randperm(int((y == k).sum()), generator=g)[:per_class]]
                         for k in range(self.data.n_classes)])
        return self.data.train[idx], y[idx]

    def labelled_batch(self):
        x, y = self.labelled
        idx = torch.randint(len(x), (self.cfg.optim.batch_size,), generator=self.rngs["data"])
        return self.dist.shard(to_float(x[idx])).to(self.device), self.dist.shard(y[idx]).to(self.device)

    # ---- one iteration ----------------------------------------------------------------------------------------
    def _set_lr(self) -> None:
        o = self.cfg.optim
        frac = min(self.iteration / max(o.iters, 1), 1.0) if o.lr_schedule == "linear" else 0.0
        for name, opt in self.optims.items():
            for group in opt.param_groups:
                group["lr"] = self.base_lr[name] + (o.lr_floor - self.base_lr[name]) * frac

    def _historical(self, player: str, net_name: str, stats: dict) -> torch.Tensor:
        """λ·‖θ − θ̄‖² through the toy's HistoricalAveraging term (running means in `reg_state`)."""
        ctx = StepContext(self.cfg, self.iteration, None, None, self.nets.get(net_name), self.G, self.rngs["reg"],
                          extra=self.reg_state, net_name=net_name)
        value, _ = HistoricalAveraging(player)(ctx)
        stats[f"reg/ha/{net_name}"] = value.item()
        return self.cfg.reg.historical_averaging * value

    def _bre(self, D, real, fake, real_feats, fake_feats, stats: dict) -> torch.Tensor:
        """R_BRE on each chosen sample set: fake, interp (x̂ = α·x + (1−α)·x̃), real (METHODS §1). Over several
        processes the interpolates and the pair statistics are those of the global batch, as with one process."""
        b, total, dist = self.cfg.reg.bre, 0.0, self.dist
        for kind in b.samples:
            if kind == "fake":
                feats = fake_feats
            elif kind == "real":
                feats = real_feats
            else:
                x = interpolate(dist.gather(real).flatten(1), dist.gather(fake).flatten(1), b.interp,
                                self.rngs["reg"])                                    # (B, C·H·W), global
                feats = D(dist.shard(x).view_as(real), features=True)[1]
            res = bre([dist.gather_with_grad(feats.preacts[i].flatten(1)) for i in self.bre_layers],
                      margin_s=b.margin_s, eps_scale=b.eps_scale, pairs=b.pairs)     # (K, C·H·W) per layer
            total = total + res.total
            stats.update({f"reg/bre/{kind}/me": res.me.item(), f"reg/bre/{kind}/ac": res.ac.item(),
                          f"reg/bre/{kind}/frac09": res.frac_09})
        stats["reg/bre"] = total.item()
        return b.weight * total

    def d_phase(self, stats: dict) -> None:
        cfg, r = self.cfg, self.cfg.reg
        D = self.wrapped["D"]
        real = self.real_batch()
        with torch.no_grad():
            fake = self.G(self.noise())
            if r.mdgan:                              # D1 (manifold step) separates x from G(E(x))
                fake_g, fake = fake, self.G(self.nets["E"](real))
        real_out, real_feats = D(real, features=True)
        fake_out, fake_feats = D(fake, features=True)
        if r.semi_supervised:
            lab_x, lab_y = self.labelled_batch()
            sup = k_plus_one_supervised_loss(D(lab_x), lab_y)
            loss = k_plus_one_unsupervised_loss(real_out, fake_out) + sup
            stats["loss/d_supervised"] = sup.item()
        else:
            loss = self.loss.d(real_out, fake_out, r.real_target)
        stats["loss/d"] = loss.item()
        if r.mdgan:                                  # D2 (diffusion step): G(E(x)) real, G(z) fake
            D2 = self.wrapped["D2"]
            loss2 = self.loss.d(D2(fake), D2(fake_g), 1.0)
            stats["loss/d2"] = loss2.item()
            loss = loss + loss2
        if r.bre.weight > 0:
            loss = loss + self._bre(D, real, fake, real_feats, fake_feats, stats)
        if r.gp_weight > 0:
            gp, norm = gradient_penalty(lambda v: D(v.view_as(real)), real.flatten(1), fake.flatten(1),
                                        self.rngs["reg"])
            stats["reg/gp"], stats["reg/gp/grad_norm"] = gp.item(), norm.mean().item()
            loss = loss + r.gp_weight * gp
        if r.historical_averaging > 0:
            for name in [n for n in ("D", "D2") if n in self.nets]:
                loss = loss + self._historical("d", name, stats)
        self._check_finite("loss/d", loss)
        names = [n for n in ("D", "D2") if n in self.nets]
        for n in names:
            self.optims[n].zero_grad(set_to_none=True)
        loss.backward()
        for n in names:
            self.optims[n].step()
        self._last_real = real

    def g_phase(self, stats: dict) -> None:
        cfg, r = self.cfg, self.cfg.reg
        G, Draw = self.wrapped["G"], self.D
        frozen = [p for n in ("D", "D2") if n in self.nets for p in self.nets[n].parameters()]
        for p in frozen:
            p.requires_grad_(False)
        try:
            fake = G(self.noise())
            if r.mdgan:
                out, feats = self.nets["D2"](fake, features=True)
            else:
                out, feats = Draw(fake, features=True)
            loss = self.loss.g(k_plus_one_real_logit(out) if r.semi_supervised else out)
            stats["loss/g"] = loss.item()
            if r.feature_matching > 0:               # last hidden conv layer, against the batch D just saw
                with torch.no_grad():
                    real_feats = (self.nets["D2"] if r.mdgan else Draw)(self._last_real, features=True)[1]
                fm = feature_matching_loss(real_feats.acts[-1], feats.acts[-1], r.feature_matching_norm)
                stats["reg/fm"] = fm.item()
                loss = r.feature_matching * fm + (0 if r.feature_matching_replace else loss)
            if "E" in self.nets:                     # mode regularizers, or MDGAN's manifold step
                real = self._last_real
                recon = G(self.wrapped["E"](real))
                geo, mode = mode_regularizer_terms(real, recon, Draw(recon), "intent" if r.mdgan else r.mode_sign)
                stats["reg/mode/geometric"], stats["reg/mode/mode"] = geo.item(), mode.item()
                loss = loss + (r.mdgan_lambda * geo + mode if r.mdgan else r.mode_lambda1 * geo + r.mode_lambda2 * mode)
            if r.historical_averaging > 0:
                loss = loss + self._historical("g", "G", stats)
            self._check_finite("loss/g", loss)
            names = [n for n in ("G", "E") if n in self.nets]
            for n in names:
                self.optims[n].zero_grad(set_to_none=True)
            loss.backward()
            for n in names:
                self.optims[n].step()
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def _check_finite(self, name: str, value: torch.Tensor) -> None:
        if not torch.isfinite(value):
            raise TrainingDiverged(f"{name} became {float(value)} at step {self.iteration + 1}; "
                                   f"the weights are those of step {self.iteration}")

    def step(self) -> dict[str, float]:
        """`optim.d_steps` D updates, one G (and E) update; stats averaged over ranks; metrics every eval.every."""
        self._set_lr()
        stats: dict[str, float] = {}
        for _ in range(self.cfg.optim.d_steps):
            self.d_phase(stats)
        self.g_phase(stats)
        self.iteration += 1
        stats = self.dist.mean_stats(stats, self.device)
        stats["step"] = self.iteration
        stats["lr/g"] = self.optims["G"].param_groups[0]["lr"]
        if self.iteration % self.cfg.eval.every == 0 or self.iteration == self.cfg.optim.iters:
            stats.update(self.evaluate())
        self.history.append(stats)
        return stats

    def run(self, n: int, progress_fn: Optional[Callable[[int, int, dict], None]] = None) -> list[dict]:
        out = []
        for i in range(n):
            out.append(self.step())
            if progress_fn is not None:
                progress_fn(i + 1, n, out[-1])
        return out

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
        return {
            "format": FORMAT, "config": self.cfg.to_dict(), "iteration": self.iteration,
            "nets": {k: {n: v.detach().cpu() for n, v in net.state_dict().items()} for k, net in self.nets.items()},
            "optims": {k: o.state_dict() for k, o in self.optims.items()},
            "rngs": {k: g.get_state() for k, g in self.rngs.items()},
            "reg_state": {k: v.detach().cpu() for k, v in self.reg_state.items()},
            "history": self.history,
        }

    def save(self, path) -> None:
        atomic_torch_save(self.state_dict(), path)

    def load_state_dict(self, ck: dict) -> None:
        for name, sd in ck["nets"].items():
            self.nets[name].load_state_dict(sd)
        for name, sd in ck["optims"].items():
            self.optims[name].load_state_dict(sd)
        for name, state in ck["rngs"].items():
            self.rngs[name].set_state(state)
        self.reg_state = {k: v.to(self.device) for k, v in ck["reg_state"].items()}
        self.iteration, self.history = ck["iteration"], list(ck["history"])

    @classmethod
    def load(cls, path, device: Optional[str] = None, dist: Optional[DistContext] = None,
             classifier_path=None, iters: Optional[int] = None) -> "ImageTrainer":
        """Rebuild from a checkpoint (state dicts + config, `weights_only=True`); `iters` extends the run."""
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"{path}: not a toyviz image checkpoint ({type(e).__name__})") from None
        if not isinstance(ck, dict) or ck.get("format") != FORMAT:
            raise ValueError(f"{path}: not a toyviz image checkpoint")
        cfg = ImageConfig.from_dict(ck["config"])
        if device is not None:
            cfg.device = device
        if iters is not None:
            cfg.optim.iters = iters
        t = cls(cfg, dist, classifier_path)
        t.load_state_dict(ck)
        return t
