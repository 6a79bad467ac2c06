"""toyviz.image: DCGANs at the scale of the papers, sharing the toy's losses, regularizers and features contract.

`python -m toyviz.image train --dataset digits --out runs/x` (also under `torchrun`); `python -m toyviz.image bench`.
"""
from .config import ImageConfig
from .trainer import ImageTrainer

__all__ = ["ImageConfig", "ImageTrainer"]
