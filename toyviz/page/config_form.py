"""The configuration form in human terms, free of streamlit: which group each config field belongs to (Data,
Generator, Discriminator, Training, Regularizers, View), its short label with units, its one-line help (the
config's own `MEANINGS`, through `describe`) with the dotted key, and which fields are rarely used ("Advanced").
The page draws one widget per `toyviz.page.session.Field`; this module only names and sorts them.
"""
from __future__ import annotations

from fnmatch import fnmatch

from ..engine.config import Config, describe

GROUPS = ("Data", "Generator", "Discriminator", "Training", "Regularizers", "View")
_GROUP_OF = (         # first match wins: (pattern of dotted keys, group)
    ("data.*", "Data"),
    ("nets.g.*", "Generator"), ("nets.latent_dim", "Generator"), ("nets.g_*", "Generator"),
    ("nets.d.*", "Discriminator"), ("nets.d_*", "Discriminator"), ("nets.minibatch_*", "Discriminator"),
    ("nets.pack", "Discriminator"),
    ("nets.e.*", "Regularizers"),          # the encoder E exists for the mode regularizers and MDGAN
    ("reg.*", "Regularizers"),
    ("viz.*", "View"),
    ("*", "Training"),                     # loss, seed, optim.*
)
LABELS = {
    "data.kind": "data", "data.n_modes": "modes on the ring", "data.radius": "ring radius (data units)",
    "data.grid_size": "modes per side of the grid", "data.grid_spacing": "grid spacing (data units)",
    "data.std": "width σ of each mode (data units)", "data.centers": "centres [[x, y], …]",
    "data.stds": "σ of each centre", "data.weights": "weight of each centre",
    "nets.latent_dim": "noise z: dimensions", "nets.*.width": "{net}: units per hidden layer",
    "nets.*.depth": "{net}: hidden layers", "nets.*.activation": "{net}: activation",
    "nets.*.slope": "{net}: leaky ReLU's negative slope", "nets.g_output": "G's output layer",
    "nets.g_output_scale": "G's tanh output scale (data units)", "nets.g_vbn": "virtual batch norm in G",
    "nets.g_vbn_ref": "virtual batch norm: reference batch (samples)",
    "nets.d_spectral_norm": "spectral normalization of D", "nets.minibatch_kernels": "minibatch discrimination kernels",
    "nets.minibatch_dims": "dimensions per minibatch kernel", "nets.pack": "PacGAN: samples per D input",
    "loss": "GAN loss", "seed": "seed", "optim.batch_size": "batch size (samples)",
    "optim.lr_g": "G's learning rate (Adam step size)", "optim.lr_d": "D's learning rate (Adam step size)",
    "optim.beta1": "Adam β1", "optim.beta2": "Adam β2", "optim.d_steps": "D updates per G update",
    "optim.iters": "length of the run (steps)", "optim.lr_schedule": "learning-rate schedule",
    "optim.lr_floor": "final learning rate of the linear schedule",
    "reg.bre.weight": "BRE weight λ (0 = off)", "reg.bre.layers": "BRE: D's layers",
    "reg.bre.samples": "BRE: batches", "reg.bre.interp": "BRE: interpolates", "reg.bre.pairs": "BRE: AC pairs",
    "reg.bre.margin_s": "BRE: soft-sign margin s",
    "reg.bre.eps_scale": "BRE: soft-sign ε (relative)", "reg.bre.schedule": "BRE: weight schedule",
    "reg.gp_weight": "gradient penalty λ (0 = off)",
    "reg.real_target": "D's target for real points (1 = no smoothing)",
    "reg.historical_averaging": "historical averaging λ (0 = off)",
    "reg.feature_matching": "feature matching λ (0 = off)",
    "reg.feature_matching_layer": "feature matching: D's layer", "reg.feature_matching_norm": "feature matching: norm",
    "reg.feature_matching_replace": "feature matching replaces G's loss",
    "reg.mode_lambda1": "mode regularizer λ1, geometric (0 = off)", "reg.mode_lambda2": "mode regularizer λ2 (0 = off)",
    "reg.mode_sign": "mode term's sign", "reg.mdgan": "MDGAN (two discriminators)",
    "reg.mdgan_lambda": "MDGAN's weight", "reg.unrolled_steps": "unrolled D steps (0 = off)",
    "reg.semi_supervised_fraction": "K+1 D: labelled share (0 = off)",
    "reg.semi_supervised_halve": "K+1 loss halved (reference code)",
    "viz.extent": "plane drawn [x0, x1, y0, y1] (data units)", "viz.resolution": "region maps (pixels per side)",
    "viz.snapshot_every": "snapshot every (steps)", "viz.max_snapshots": "snapshots kept",
    "viz.eval_samples": "G's points for the metrics (samples)", "viz.metrics_every": "metrics every (steps)",
}
ADVANCED = ("data.stds", "data.weights", "nets.*.slope", "nets.e.*", "nets.g_output_scale", "nets.g_vbn_ref",
            "nets.minibatch_dims", "optim.beta1", "optim.beta2", "optim.lr_floor", "reg.bre.samples",
            "reg.bre.interp", "reg.bre.pairs", "reg.bre.margin_s", "reg.bre.eps_scale", "reg.bre.schedule",
            "reg.feature_matching_layer", "reg.feature_matching_norm", "reg.feature_matching_replace",
            "reg.mode_sign", "reg.mdgan_lambda", "reg.semi_supervised_halve", "viz.max_snapshots",
            "viz.eval_samples", "viz.metrics_every")
NETS = {"g": "G", "d": "D", "e": "E (encoder)"}


def group_of(path: str) -> str:
    return next(group for pattern, group in _GROUP_OF if fnmatch(path, pattern))


def is_advanced(path: str) -> bool:
    return any(fnmatch(path, pattern) for pattern in ADVANCED)


def label_of(path: str) -> str:
    """The field's short label with its unit, e.g. 'width σ of each mode (data units)' for data.std."""
    parts = path.split(".")
    if path in LABELS:
        return LABELS[path]
    if parts[0] == "nets" and len(parts) == 3:
        generic = LABELS.get(f"nets.*.{parts[2]}")
        if generic:
            return generic.format(net=NETS.get(parts[1], parts[1]))
    return parts[-1].replace("_", " ")


def help_texts(cfg: Config) -> dict[str, str]:
    """Dotted key -> the one-line help the page shows as the widget's tooltip: the meaning, then the key itself
    (what the command line's --set takes)."""
    return {key: (meaning[:1].upper() + meaning[1:] + "." if meaning else "") + f"\n\n`{key}` "
            f"(command line: `--set {key}=…`)" for key, _, meaning in describe(cfg)}
