"""The page server's live runs: a server-wide cap on sessions holding trainers (`TOYVIZ_MAX_RUNS`) and an idle
timeout (`TOYVIZ_IDLE_SECONDS`) after which a session is paused and its runs freed, so a classroom opening one
teacher's server keeps its memory and cores bounded. Free of streamlit: the page wraps each script run of a session
in `LiveRuns.visit` and shows the message it yields.
"""
from __future__ import annotations

import gc
import os
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping, Optional

MAX_RUNS_VAR, IDLE_VAR = "TOYVIZ_MAX_RUNS", "TOYVIZ_IDLE_SECONDS"
RUNS_PER_CORE = 4              # a playing run takes most of a core only while it trains; most sessions sit paused
DEFAULT_IDLE_SECONDS = 600.0   # ten minutes without a click: a student who left, or a forgotten tab


class _Entry:
    __slots__ = ("session", "last_active", "in_use", "freeing")

    def __init__(self, session, now: float):
        self.session = weakref.ref(session)
        self.last_active, self.in_use, self.freeing = now, 0, False


class LiveRuns:
    """At most `max_runs` sessions hold runs at once; a session without a visitor's action for `idle_seconds` is
    freed (`session.free(reason)`) once no script of it is running. Thread-safe: Streamlit runs each session's
    scripts on its own threads. Sessions are held by weak reference, so a session Streamlit drops leaves by itself.

    A session here has `runs` (empty when it holds none), `freed` (why its runs were freed, or None), `reset()`
    (build its runs from its config) and `free(reason)` (pause and drop them): `page.session.Session`."""

    def __init__(self, max_runs: int, idle_seconds: float, clock: Callable[[], float] = time.monotonic):
        if max_runs < 1 or not idle_seconds > 0:
            raise ValueError(f"live runs: need max_runs ≥ 1 and idle_seconds > 0 (got {max_runs}, {idle_seconds})")
        self.max_runs, self.idle_seconds, self.clock = max_runs, idle_seconds, clock
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)   # notified when a free under way (`free_idle`) has ended
        self._held: dict[int, _Entry] = {}           # id(session) -> its entry, while it holds runs

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "LiveRuns":
        """The cap and timeout from TOYVIZ_MAX_RUNS (default RUNS_PER_CORE per core) and TOYVIZ_IDLE_SECONDS
        (default DEFAULT_IDLE_SECONDS); ValueError naming the variable and its allowed values."""
        max_runs = _env_number(environ, MAX_RUNS_VAR, RUNS_PER_CORE * (os.cpu_count() or 1), int,
                               "a whole number ≥ 1, e.g. 20")
        idle = _env_number(environ, IDLE_VAR, DEFAULT_IDLE_SECONDS, float, "a number of seconds > 0, e.g. 600")
        return cls(max_runs, idle)

    @property
    def live(self) -> int:
        """Sessions holding runs now."""
        with self._lock:
            return sum(e.session() is not None for e in self._held.values())

    # ---- what the page calls --------------------------------------------------------------------------------------
    @contextmanager
    def visit(self, session, active: bool = True) -> Iterator[Optional[str]]:
        """Wrap one script run of `session`'s page. Yields None when the session holds its runs (a new session gets
        them here if the cap allows), and they stay held until the block ends; otherwise yields the message to show
        instead (the cap is reached, or the session was freed for being idle: `start` brings it back). `active`: a
        visitor's action, which restarts the idle clock (a playing page's timed refresh is not one)."""
        self.free_idle()
        with self._lock:
            self._wait_for_free(session)            # a free under way ends first: its message is what this visit shows
            new = session.freed is None and self._entry(session) is None
        if new:                                         # a new session (or one made outside the page)
            try:
                self.start(session)
            except ValueError as e:
                yield str(e)
                return
        with self._lock:
            self._wait_for_free(session)
            entry = self._entry(session)
            if entry is not None:
                entry.in_use += 1
                if active:
                    entry.last_active = self.clock()
        if entry is None:
            yield session.freed or self._full_message()
            return
        try:
            yield None
        finally:
            with self._lock:
                entry.in_use -= 1

    def start(self, session) -> None:
        """Give `session` a place and fresh runs from its config (`session.reset()`); ValueError with the cap's
        message when every place is taken (idle sessions are freed first)."""
        self.free_idle()
        with self._lock:
            self._wait_for_free(session)
            self._prune()
            if len(self._held) >= self.max_runs and id(session) not in self._held:
                gc.collect()          # sessions Streamlit let go may still sit in reference cycles: reclaim them
                self._prune()
            if self._entry(session) is None:
                if len(self._held) >= self.max_runs:
                    raise ValueError(self._full_message(len(self._held)))
                self._held[id(session)] = _Entry(session, self.clock())   # the place is taken before the build
        try:
            if not session.runs:
                session.reset()
        except BaseException:
            self.leave(session)
            raise

    def leave(self, session) -> None:
        """`session` gives its place back (its runs are its own business)."""
        with self._lock:
            self._held.pop(id(session), None)

    def free_idle(self) -> int:
        """Free every session idle for `idle_seconds` whose scripts are not running; returns how many.

        A session being freed keeps its entry, marked `freeing`, until `free` has returned: a visit or `start`
        of it meanwhile waits for the free to end (and then shows its message), where it would otherwise find no
        entry, take a new place for the runs it still had, and lose them mid-script when the free went through."""
        now = self.clock()
        with self._lock:
            self._prune()
            idle = [(k, e, e.session()) for k, e in self._held.items()
                    if e.in_use == 0 and not e.freeing and now - e.last_active >= self.idle_seconds]
            for _, entry, _ in idle:
                entry.freeing = True
        # outside the registry's lock: `free` takes the session's own lock, which a step in progress holds
        span = f"{self.idle_seconds / 60:.3g} min" if self.idle_seconds >= 60 else f"{self.idle_seconds:.3g} s"
        for key, entry, session in idle:
            try:
                session.free(f"Your run was paused and its memory freed after {span} without activity "
                             f"({IDLE_VAR}), so that others can train. Start again for a new run from the same "
                             "settings.")
            finally:
                with self._lock:
                    if self._held.get(key) is entry:
                        del self._held[key]
                    self._freed.notify_all()
        return len(idle)

    # ---- inside --------------------------------------------------------------------------------------------------
    def _entry(self, session) -> Optional[_Entry]:
        """`session`'s entry, or None (none, or another session's under a reused id). Under `_lock`."""
        entry = self._held.get(id(session))
        return entry if entry is not None and entry.session() is session else None

    def _wait_for_free(self, session) -> None:
        """Wait while `free_idle` frees `session` (under `_lock`, which the wait gives up meanwhile)."""
        self._freed.wait_for(lambda: (e := self._entry(session)) is None or not e.freeing)

    def _prune(self) -> None:
        """Drop the entries of sessions Streamlit has let go (their weak references are dead). Under `_lock`."""
        for key in [k for k, e in self._held.items() if e.session() is None]:
            del self._held[key]

    def _full_message(self, live: Optional[int] = None) -> str:
        live = self.max_runs if live is None else live
        return (f"This server already has {live} live runs, its limit ({MAX_RUNS_VAR}={self.max_runs}). Try again "
                "in a minute, when someone pauses or leaves (idle runs are freed after "
                f"{self.idle_seconds:g} s), or ask whoever runs the server to raise {MAX_RUNS_VAR}.")


def _env_number(environ: Mapping[str, str], name: str, default, kind, allowed: str):
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: must be {allowed}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"{name}={text!r}: must be {allowed}")
    return value


_SERVERS: dict[tuple, LiveRuns] = {}
_SERVERS_LOCK = threading.Lock()


def for_server(environ: Mapping[str, str] = os.environ) -> LiveRuns:
    """The one registry of this server process for its settings (the page's script reruns on every action, so the
    registry lives here, in an imported module, not in the script)."""
    key = (environ.get(MAX_RUNS_VAR, ""), environ.get(IDLE_VAR, ""))
    with _SERVERS_LOCK:
        if key not in _SERVERS:
            _SERVERS[key] = LiveRuns.from_env(environ)
        return _SERVERS[key]
