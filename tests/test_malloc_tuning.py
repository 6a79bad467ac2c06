"""toyviz.malloc_tuning: with glibc's thresholds fixed, a large array freed is reused by the next one instead of being
paid again in page faults; the command line and the page set it; a user's own MALLOC_* choice is left alone."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Five 48 MiB arrays after a first one: above glibc's largest automatic mmap threshold (32 MiB), so by default each
# is mapped afresh and faulted in, page by page.
PROBE = """
import resource, sys
import numpy as np
how = sys.argv[1]
if how == "call":
    from toyviz.malloc_tuning import reuse_freed_memory
    print(reuse_freed_memory())
elif how == "cli":
    from toyviz.commands.cli import main
    main(["presets"])
elif how == "page":
    import app
np.ones(6 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    np.ones(6 << 20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(how: str, **env) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, how], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env}).stdout.split("\n")
    lines = [line for line in out if line.strip()]
    return lines[0], int(lines[-1])


@pytest.fixture(scope="module")
def default():
    """Faults of the five arrays in a process that keeps glibc's default thresholds."""
    return faults("none")[1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's; toyviz leaves others alone")
def test_freed_arrays_are_reused_without_page_faults(default):
    applied, reused = faults("call")
    assert applied == "True"
    assert default > 100 and reused * 20 < default, (default, reused)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's; toyviz leaves others alone")
@pytest.mark.parametrize("entry", ["cli", "page"])
def test_the_command_line_and_the_page_set_it(entry, default):
    _, entry_faults = faults(entry)
    assert entry_faults * 20 < default, (entry, default, entry_faults)


def test_a_users_malloc_environment_wins():
    applied, _ = faults("call", MALLOC_MMAP_THRESHOLD_="65536")
    assert applied == "False"
