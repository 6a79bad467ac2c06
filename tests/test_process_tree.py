"""toyviz.experiments.process_tree: a process tree's resident memory and CPU time from /proc (bench load)."""
import os
import subprocess
import sys
import time

import pytest

from toyviz.experiments.process_tree import PeakSampler, cpu_seconds, descendants, tree_rss_mib

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")


def test_a_busy_child_is_in_the_tree_and_its_cpu_and_memory_count():
    child = subprocess.Popen([sys.executable, "-c", "import time\nx = b'x' * (64 << 20)\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.4: pass\ntime.sleep(30)"])
    try:
        me = os.getpid()
        with PeakSampler(me, every=0.05) as sampler:
            deadline = time.monotonic() + 20
            while cpu_seconds([child.pid]) < 0.3 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert child.pid in descendants(me) and me in descendants(me)
        assert descendants(child.pid) == [child.pid]
        assert cpu_seconds([child.pid]) >= 0.3                     # the child's busy loop, not ours
        assert tree_rss_mib(child.pid) >= 64                       # its 64 MiB of bytes are resident
        assert sampler.peak >= tree_rss_mib(child.pid)             # the tree holds the child
    finally:
        child.kill()
        child.wait()
    assert cpu_seconds([child.pid]) == 0 and tree_rss_mib(child.pid) is None   # gone: nothing to count
