"""What the page reads from its visitors, bounded: one table of size limits for every upload (CSV, config,
checkpoint) and every file of an image run folder the page opens, checked before a byte is parsed and named in the
message. Every reader behind them is linear in its input (CSV, JSON, `torch.load` with `weights_only=True`, PNG), so
bounding the size bounds the time too. `.streamlit/config.toml`'s `server.maxUploadSize` equals the largest upload
limit (MAX_UPLOAD_MB), so Streamlit refuses a larger file before it reaches the server's memory.
"""
from __future__ import annotations

MB = 2**20

LIMITS: dict[str, tuple[int, str]] = {       # kind -> (most bytes, what the message calls it)
    "csv": (20 * MB, "points CSV"),
    "config": (20 * MB + 64 * 1024, "config file"),         # a config may carry a CSV's points
    "checkpoint": (200 * MB, "checkpoint"),
    "run config": (1 * MB, "run folder's config.json"),
    "run stats": (64 * MB, "run folder's stats.jsonl"),      # about 40,000 image-scale steps
    "run samples": (16 * MB, "sample picture"),
}
MAX_CSV_POINTS = 100_000
MAX_RUN_SAMPLES = 10_000                     # samples_*.png files the image-runs page lists in one folder
MAX_UPLOAD_MB = max(LIMITS[k][0] for k in ("csv", "config", "checkpoint")) // MB   # server.maxUploadSize


def check_size(kind: str, size: int) -> None:
    """ValueError naming the file, its size and the limit when `size` bytes exceed the limit for `kind`."""
    limit, name = LIMITS[kind]
    if size > limit:
        raise ValueError(f"the {name} is {size / MB:.1f} MB; at most {limit / MB:g} MB "
                         f"(the page's upload limits, toyviz/page/uploads.py)")
