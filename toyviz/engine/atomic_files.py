"""Atomic file writing: every file toyviz writes goes to a temporary name beside its target, then is renamed,
so a failure (a full disk, an encoder error, Ctrl-C) never leaves a half-written file."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path) -> Iterator[str]:
    """`with atomic_path(p) as tmp:` write `tmp` (same folder, same extension); renamed to `p` on success only.

    The file gets the ordinary permissions of a new file (0666 less the umask), not mkstemp's private 0600.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        yield tmp
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def atomic_torch_save(obj, path) -> None:
    import torch
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
