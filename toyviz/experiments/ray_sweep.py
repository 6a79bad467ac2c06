"""The sweep's Ray backend (`toyviz sweep --backend ray [--address HOST:PORT]`): each unit of `sweep.jobs` (the
seeds of one config as one seed batch, or one run) is one Ray task, on a local Ray instance or a cluster.

Results are shipped back, not written in place: a task trains its runs into a temporary folder on whichever machine
runs it, with the same code the local backend runs in a worker (`sweep.run_batch`), and returns their files as
bytes; the driver writes each run folder under the sweep's `--out` (a temporary folder renamed into place, so a
folder is whole or absent). No folder needs to be shared between machines, and the folders are those of a local
sweep. A task whose worker or machine is lost is run again (twice at most); one that raises, or is lost for good,
fails its runs, recorded per run as the local backend records a failure.

Ray (`pip install ray`, the `ray` extra) is imported only here, and only when this backend runs.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator, Optional

from .runs import ERROR_FILE
from .sweep import RunResult, RunSpec, pack, run_packed

RunFiles = dict[str, bytes]          # a run folder's files: path relative to the folder -> contents


def require_ray():
    """The `ray` module, or a ValueError saying what to install."""
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray: Ray is not installed (pip install ray, or pip install 'toyviz[ray]')") \
            from None
    return ray


def read_folder(folder: Path) -> RunFiles:
    """Every file under `folder`, for shipping to the driver (run folders are small: config, stats, checkpoint)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}



def write_folder(folder: Path, files: RunFiles) -> None:
    """Replace `folder` by one holding `files`: written in a temporary folder beside it, then renamed, so a
    sweep stopped halfway leaves each run folder whole or absent (and the sweep retrains it on resume)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".tmp-{folder.name}-"))
    try:
        for rel, data in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)              # mkdtemp's folder is private (0700); a run folder is not
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def train_job(items: list[tuple]) -> tuple[list[RunResult], list[RunFiles]]:
    """Runs in a Ray worker: train one job (`(label, seed, config dict, out)` per run, as the local backend's
    workers get it) into a temporary folder, and return its RunResults and its run folders' files, in order."""
    with tempfile.TemporaryDirectory(prefix="toyviz-ray-") as tmp:
        local = [(label, seed, cfg, str(Path(tmp) / str(i))) for i, (label, seed, cfg, _) in enumerate(items)]
        results = run_packed(local)
        return results, [read_folder(Path(out)) for *_, out in local]


def connect(address: Optional[str], workers: int) -> bool:
    """Join the cluster at `address`, or start a local instance with `workers` CPUs; nothing when this process is
    already connected (a caller's `ray.init`). True when this call connected (so the caller disconnects).
    ValueError, in one line, when the cluster cannot be joined."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    if address:
        check_address(address)
        try:
            ray.init(address=address, log_to_driver=False)
        except Exception as e:        # ConnectionError wrapping the GCS's error: say what to check, in one line
            text = f"{e}\n{e.__cause__ or ''}".strip()
            why = ("it wants its token: set RAY_AUTH_MODE=token and copy the head's ~/.ray/auth_token here"
                   if "Authentication" in text else text.splitlines()[-1][:200])
            raise ValueError(f"--address {address}: cannot join the Ray cluster there ({why}; README: Sweeps on "
                             f"Ray)") from None
    else:
        # "local": a new instance even where `ray start` left a cluster running on this machine
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
    return True


def check_address(address: str, timeout: float = 10.0) -> None:
    """ValueError when nothing accepts a connection at HOST:PORT: `ray.init` would retry for minutes."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--address takes HOST:PORT, the head's `ray start --head --port` (got {address!r})")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ValueError(f"--address {address}: nothing answers there ({e.strerror or e}); start the head with "
                         f"`ray start --head --port {port}` (README: Sweeps on Ray)") from None


def run_jobs(work: list[list[RunSpec]], address: Optional[str] = None, workers: int = 1) -> Iterator[list[RunResult]]:
    """Yield each job's RunResults (a job: a list of `sweep.RunSpec`) as its Ray task finishes, its run folders
    written under their `out` first. A task that raised or died yields its runs as failed, with the reason in
    each run folder's ERROR_FILE beside its config.json (so `report` lists it among the runs left out)."""
    ray = require_ray()
    started = connect(address, workers)
    pending: dict = {}
    try:
        # one CPU a task: run_batch trains on one torch thread. A task whose worker or machine is lost runs again
        # (max_retries; training is deterministic and nothing is written until it returns); one that raises is not
        remote = ray.remote(num_cpus=1, max_retries=2, retry_exceptions=False)(train_job)
        pending = {remote.remote(pack(job)): job for job in work}
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ref)
            try:
                results, folders = ray.get(ref)
            except Exception as e:      # RayTaskError, WorkerCrashedError, NodeDiedError: the job's runs failed
                yield [_failed(spec, e) for spec in job]
                continue
            for spec, files in zip(job, folders):
                write_folder(spec.out, files)
            yield results
    finally:
        for ref in pending:                      # stopped early (Ctrl-C, an error): the rest need not train
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def _failed(spec: RunSpec, e: Exception) -> RunResult:
    cause = getattr(e, "cause", None) or e          # a RayTaskError wraps what the task raised: name that
    msg = f"{type(cause).__name__}: {cause}".strip().splitlines()[0]
    spec.out.mkdir(parents=True, exist_ok=True)
    spec.cfg.to_json(spec.out / "config.json")
    (spec.out / ERROR_FILE).write_text(msg + "\n")
    return RunResult(spec.label, spec.seed, 0.0, {}, msg)

