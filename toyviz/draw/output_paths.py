"""Output files checked before anything is drawn: the extension among the allowed ones, a writable folder, a video
frame size H.264 can encode. Errors are ValueErrors naming the field and the allowed values."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

VIDEO_EXTS, FIGURE_EXTS, HTML_EXTS = (".mp4", ".gif"), (".png", ".pdf", ".svg"), (".html",)


def check_output(path, exts: Sequence[str]) -> Path:
    """The output path, once its extension is one of `exts` and its folder exists and is writable."""
    p = Path(path)
    if p.suffix.lower() not in exts:
        raise ValueError(f"out: unknown extension {p.suffix or '(none)'!r} of {p} (choose from: {', '.join(exts)})")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"out: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"out: {p} is not writable")
    if p.is_dir():
        raise ValueError(f"out: {p} is a folder")
    return p


def check_size(size, path: Path) -> tuple[int, int]:
    """(W, H) of a video frame: at least 64 pixels a side; multiples of 16 for MP4 (H.264 macro blocks)."""
    W, H = (int(v) for v in size)
    if W < 64 or H < 64:
        raise ValueError(f"size: {W}x{H} is too small (at least 64x64)")
    if path.suffix.lower() == ".mp4" and (W % 16 or H % 16):
        raise ValueError(f"size: an MP4 needs sides that are multiples of 16 (got {W}x{H}, e.g. 512x512)")
    return W, H
