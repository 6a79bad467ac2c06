"""toyviz: train small GANs on 2D mixtures and see how D partitions the plane (see README).

The names a script needs, from the layers that hold them: the engine (`Config`, `presets`, `Trainer`, `Callback`,
`bre`), the geometry (`rasterize`, `raster_of`, `rasterize_latent`, `exact_partition`, `metrics`,
`RegionMetrics`) and the drawing (`export_video`, `write_figure`).
"""
from .draw.writers import export_video, write_figure
from .engine import presets
from .engine.config import Config
from .engine.regularizers import bre
from .engine.trainer import Callback, Trainer, TrainingDiverged
from .geometry import metrics
from .geometry.metrics import RegionMetrics
from .geometry.polygons import exact_partition
from .geometry.raster import raster_of, rasterize, rasterize_latent

__version__ = "0.4.0"

__all__ = ["Callback", "Config", "RegionMetrics", "Trainer", "TrainingDiverged", "bre", "exact_partition",
           "export_video", "metrics", "presets", "raster_of", "rasterize", "rasterize_latent", "write_figure"]
