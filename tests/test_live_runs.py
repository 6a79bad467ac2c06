"""The page server's live-run cap and idle timeout (`toyviz.page.live_runs`): a place per session up to the cap, the
cap's message, idle sessions paused and freed (never while a script of theirs runs), the settings from the
environment, and many sessions' threads at once."""
import gc
import threading
import time
import weakref
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from toyviz.page.live_runs import IDLE_VAR, MAX_RUNS_VAR, LiveRuns, for_server
from toyviz.page.session import Session


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def new_session(tiny_cfg):
    return lambda: Session(tiny_cfg, steps_per_update=2, start=False)


def visit(live, s, active=True):
    with live.visit(s, active) as refused:
        return refused


def test_the_cap_refuses_a_session_with_a_message_until_a_place_is_free(new_session):
    live = LiveRuns(2, 60)
    a, b, c = new_session(), new_session(), new_session()
    assert visit(live, a) is None and visit(live, b) is None and a.runs and b.runs
    refused = visit(live, c)
    assert "already has 2 live runs, its limit (TOYVIZ_MAX_RUNS=2)" in refused and not c.runs
    with pytest.raises(ValueError, match="TOYVIZ_MAX_RUNS=2"):
        live.start(c)
    assert live.live == 2
    live.leave(a)
    assert visit(live, c) is None and c.runs and live.live == 2


def test_an_idle_session_is_paused_freed_and_can_start_again(new_session):
    clock = Clock()
    live = LiveRuns(2, 60, clock)
    a, b = new_session(), new_session()
    assert visit(live, a) is None
    a.play()
    a.update()
    trainer = weakref.ref(a.trainer)
    clock.now = 59
    assert visit(live, a, active=False) is None                # a playing page's refresh is no activity
    clock.now = 61
    assert visit(live, b) is None                               # b's visit frees a
    assert a.runs == {} and not a.playing and "paused and its memory freed after 1 min without activity" in a.freed
    gc.collect()
    assert trainer() is None                                    # nothing else holds the freed run
    assert visit(live, a) == a.freed and live.live == 1          # a's page says so, until a starts again
    live.start(a)
    assert a.freed is None and a.trainer.iteration == 0 and visit(live, a) is None and live.live == 2


def test_a_session_whose_script_runs_is_not_freed(new_session):
    clock = Clock()
    live = LiveRuns(1, 10, clock)
    a = new_session()
    with live.visit(a) as refused:
        assert refused is None
        clock.now = 100
        assert live.free_idle() == 0 and a.runs
        a.step(2)
    assert live.free_idle() == 1 and a.runs == {}


def test_a_session_made_outside_the_page_is_counted_when_it_first_visits(tiny_cfg):
    live = LiveRuns(1, 60)
    a, b = Session(tiny_cfg), Session(tiny_cfg)               # started: they hold runs already
    assert visit(live, a) is None and a.trainer.iteration == 0
    assert "TOYVIZ_MAX_RUNS=1" in visit(live, b)


def test_a_session_that_goes_away_gives_its_place_back(new_session):
    live = LiveRuns(1, 60)
    a = new_session()
    assert visit(live, a) is None
    del a                                                      # Streamlit dropped the session
    b = new_session()
    assert visit(live, b) is None and live.live == 1


def test_settings_from_the_environment():
    live = LiveRuns.from_env({MAX_RUNS_VAR: "3", IDLE_VAR: "90"})
    assert (live.max_runs, live.idle_seconds) == (3, 90.0)
    default = LiveRuns.from_env({})
    assert default.max_runs >= 4 and default.idle_seconds == 600
    for env, match in [({MAX_RUNS_VAR: "0"}, "TOYVIZ_MAX_RUNS='0': must be a whole number ≥ 1"),
                       ({MAX_RUNS_VAR: "2.5"}, "TOYVIZ_MAX_RUNS='2.5': must be a whole number"),
                       ({IDLE_VAR: "nan"}, "TOYVIZ_IDLE_SECONDS='nan': must be a number of seconds > 0"),
                       ({IDLE_VAR: "-1"}, "TOYVIZ_IDLE_SECONDS='-1'")]:
        with pytest.raises(ValueError, match=match.replace("(", r"\(").replace("?", r"\?")):
            LiveRuns.from_env(env)


def test_a_visit_during_a_free_waits_for_it_and_shows_its_message(new_session):
    """The idle reaper has taken a session off the registry but its `free` waits for a step in progress; a visit
    that comes meanwhile must not take a new place for the runs about to go (its script would then lose them
    mid-way: KeyError 'A', seen once in CI): it waits for the free and shows why the runs were freed."""
    clock = Clock()
    live = LiveRuns(3, 60, clock)
    s = new_session()
    assert visit(live, s) is None and s.runs
    clock.now = 61
    step_under_way, step_done = threading.Event(), threading.Event()

    def step():                                   # a step in progress holds the session's lock
        with s.lock:
            step_under_way.set()
            step_done.wait(10)
    seen = []

    def visitor():
        with live.visit(s) as refused:
            seen.append(refused)
            step_done.set()                       # (the old code got here at once, holding the runs it would lose)
            time.sleep(0.2)
            seen.append(dict(s.runs))
    freeing, free = threading.Event(), s.free

    def free_and_tell(reason):                    # the reaper has chosen `s` and waits for the step to end
        freeing.set()
        free(reason)
    s.free = free_and_tell
    stepping, reaper = threading.Thread(target=step), threading.Thread(target=live.free_idle)
    stepping.start()
    step_under_way.wait(10)
    reaper.start()
    freeing.wait(10)
    visiting = threading.Thread(target=visitor)
    visiting.start()
    time.sleep(0.3)
    step_done.set()
    for t in (stepping, reaper, visiting):
        t.join(10)
    assert seen[0] is not None and "memory freed after 1 min without activity" in seen[0]
    assert seen[1] == {} and s.freed and live.live == 0


def test_many_sessions_on_threads_never_exceed_the_cap_and_idle_ones_are_freed_safely(new_session):
    """Eight visitors' threads play and step at once against a cap of three while a ninth thread keeps freeing
    idle sessions (every session counts as idle at once: timeout 1 ns): no visitor's script ever finds its runs
    gone mid-way, and no more than three sessions ever hold runs."""
    live = LiveRuns(3, 1e-9)
    sessions = [new_session() for _ in range(8)]
    errors, peak, served = [], [0], [0] * 8
    stop = threading.Event()

    def visitor(i):
        s = sessions[i]
        try:
            for _ in range(15):
                with live.visit(s) as refused:
                    if refused is None:
                        peak[0] = max(peak[0], live.live)
                        s.play()
                        s.update()                            # reads and trains s.runs: must stay there
                        assert s.trainer.iteration >= 1
                        served[i] += 1
                    elif s.freed:
                        try:
                            live.start(s)
                        except ValueError as e:
                            assert "TOYVIZ_MAX_RUNS=3" in str(e)
        except Exception as e:             # reported below: an assert inside a thread would be lost
            errors.append(repr(e))

    def reaper():
        while not stop.is_set():
            live.free_idle()

    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(8)]
    sweeper = threading.Thread(target=reaper)
    sweeper.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop.set()
    sweeper.join(10)
    assert errors == [] and 1 <= peak[0] <= 3
    assert sum(served) > 0 and live.live <= 3


# ---- the page (AppTest) ----------------------------------------------------------------------------------------------
def page(tiny_cfg) -> AppTest:
    """A visitor's page on a tiny run, drawn small."""
    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    app.session_state["session"] = Session(tiny_cfg, steps_per_update=2, start=False)
    app.session_state["width"], app.session_state["resolution"] = 240, 24
    app.session_state["panels"] = ["data"]
    return app.run()


def test_the_page_shows_the_cap_and_the_idle_pause(tiny_cfg, monkeypatch):
    monkeypatch.setenv(MAX_RUNS_VAR, "1")
    monkeypatch.setenv(IDLE_VAR, "3600.5")                     # settings no other test uses: a registry of its own
    first, second = page(tiny_cfg), page(tiny_cfg)
    assert not first.exception and first.session_state["session"].runs and first.button(key="step")
    assert not second.exception and not second.session_state["session"].runs
    assert "already has 1 live runs, its limit (TOYVIZ_MAX_RUNS=1)" in second.warning[0].value
    assert second.button(key="live_start").label == "Try again"
    assert [b.key for b in second.button] == ["live_start"]    # no run controls without a run
    for_server().idle_seconds = 1e-9                            # every session idle from now on
    second.button(key="live_start").click().run()               # frees the first session and takes its place
    assert not second.exception and second.session_state["session"].runs and not second.warning
    for_server().idle_seconds = 3600.5
    first.run()
    assert "paused and its memory freed" in first.warning[0].value and not first.session_state["session"].runs
    assert first.button(key="live_start").label == "Start again"
    first.button(key="live_start").click().run()                # the second still holds the only place
    assert "TOYVIZ_MAX_RUNS=1" in first.error[0].value and not first.session_state["session"].runs
    for_server().leave(second.session_state["session"])         # the second visitor leaves
    first.button(key="live_start").click().run()
    assert not first.exception and first.session_state["session"].trainer.iteration == 0
    first.button(key="step").click().run()
    assert first.session_state["session"].trainer.iteration == 2 and not first.exception
