"""Demo children: started and recorded by pid, stopped by pid, early deaths reported."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from iocdev.demo.errors import DemoError
from iocdev.demo.orchestrate import Children, Exited
from iocdev.supervise import stat


def start_ticks(pid: int) -> int | None:
    st = stat(pid)
    return st.start_ticks if st is not None and st.alive else None


def _children(tmp_path: Path) -> Children:
    return Children(log_dir=tmp_path / "logs", run_dir=tmp_path / "run", cwd=tmp_path)


def _alive(pid: int) -> bool:
    return start_ticks(pid) is not None


def test_started_child_is_recorded_and_stopped_by_pid(tmp_path: Path) -> None:
    kids = _children(tmp_path)
    child = kids.start("sleeper", [sys.executable, "-c", "import time; time.sleep(300)"])
    meta = json.loads((tmp_path / "run" / "demo-sleeper.json").read_text())
    assert meta["pid"] == child.pid
    assert meta["start_ticks"] == start_ticks(child.pid)
    assert child.ours()
    assert kids.poll() == []

    assert kids.stop_all(timeout=5) == ["sleeper"]
    assert not _alive(child.pid)
    assert not (tmp_path / "run" / "demo-sleeper.json").exists()
    assert kids.stop_all(timeout=5) == []  # twice is harmless
    assert "start:" in (tmp_path / "logs" / "demo-sleeper.log").read_text()


def test_child_ignoring_sigterm_is_killed_after_timeout(tmp_path: Path) -> None:
    kids = _children(tmp_path)
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            " print('ready', flush=True); time.sleep(300)")
    child = kids.start("stubborn", [sys.executable, "-c", code])
    deadline = time.monotonic() + 10
    while "\nready" not in child.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    assert kids.stop_all(timeout=0.5) == ["stubborn"]
    assert time.monotonic() - t0 < 5
    assert child.returncode == -signal.SIGKILL


def test_child_that_dies_early_is_reported_once_with_its_log(tmp_path: Path) -> None:
    kids = _children(tmp_path)
    kids.start("ok", [sys.executable, "-c", "import time; time.sleep(300)"])
    kids.start("crash", [sys.executable, "-c",
                         "import sys; print('boom: no broker'); sys.exit(3)"])
    deadline = time.monotonic() + 10
    ended: list[Exited] = []
    while not ended and time.monotonic() < deadline:
        ended = kids.poll()
        time.sleep(0.05)
    assert [(e.name, e.code) for e in ended] == [("crash", 3)]
    assert "boom: no broker" in ended[0].describe()
    assert "code 3" in ended[0].describe()
    assert kids.poll() == []
    assert kids.stop_all(timeout=5) == ["ok"]


def test_waited_step_is_not_reported_as_early_death(tmp_path: Path) -> None:
    kids = _children(tmp_path)
    child = kids.start("step", [sys.executable, "-c", "pass"])
    assert kids.wait(child, timeout=10) == 0
    assert kids.poll() == []


def test_leftovers_of_an_earlier_run_are_stopped_by_recorded_pid(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                            start_new_session=True)
    try:
        run = tmp_path / "run"
        run.mkdir()
        (run / "demo-worker-0.json").write_text(json.dumps(
            {"pid": proc.pid, "start_ticks": start_ticks(proc.pid), "argv": []}))
        # A record whose start time does not match is a recycled pid: never signalled.
        (run / "demo-api.json").write_text(json.dumps(
            {"pid": proc.pid, "start_ticks": 1, "argv": []}))
        kids = _children(tmp_path)
        assert kids.stop_leftovers(timeout=5) == [proc.pid]
        assert proc.wait(timeout=5) == -signal.SIGTERM
        assert list(run.glob("demo-*.json")) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_same_name_twice_is_refused(tmp_path: Path) -> None:
    kids = _children(tmp_path)
    kids.start("x", [sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        with pytest.raises(DemoError):
            kids.start("x", [sys.executable, "-c", "pass"])
    finally:
        kids.stop_all(timeout=5)
