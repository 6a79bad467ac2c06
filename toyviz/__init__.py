"""toyviz: train small GANs on 2D mixtures and see how D partitions the plane (see README)."""
from . import presets
from .config import Config
from .trainer import Trainer

__all__ = ["Config", "Trainer", "presets"]
