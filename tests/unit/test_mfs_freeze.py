"""Freezing mfsmaster with real signals, on a stand-in process (no MooseFS needed)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from mooseng.mfs import MfsController, MfsPaths
from mooseng.supervisor import Daemon


@pytest.fixture()
def controller(tmp_path: Path):
    ctl = MfsController(MfsPaths(data_path=tmp_path / "mfs"), "127.0.0.1")
    # a stand-in that dies of SIGTERM at once: only a kill explains a -9 exit code
    ctl.master = Daemon("mfsmaster", [sys.executable, "-c", "import time; time.sleep(60)"])
    ctl.master.start()
    yield ctl
    ctl.master.kill_now()


def status(ctl: MfsController, want: str, timeout: float = 2.0) -> str:
    """The process state once it is ``want`` (signals are delivered asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        state = psutil.Process(ctl.master.pid).status()
        if state == want or time.monotonic() > deadline:
            return state
        time.sleep(0.01)


def test_freeze_stops_and_thaw_resumes(controller: MfsController) -> None:
    assert controller.freeze_master()
    assert status(controller, psutil.STATUS_STOPPED) == psutil.STATUS_STOPPED
    assert controller.master_running()  # stopped is not gone
    assert controller.thaw_master()
    assert status(controller, psutil.STATUS_SLEEPING) in (psutil.STATUS_SLEEPING,
                                                          psutil.STATUS_RUNNING)
    assert not controller.thaw_master()  # only a frozen master is thawed


def test_fence_kills_a_frozen_master_without_resuming_it(controller: MfsController) -> None:
    controller.freeze_master()
    begun = time.monotonic()
    controller.fence()
    assert controller.master.poll() == -9 and time.monotonic() - begun < 2
    assert not controller.thaw_master()


def test_stopping_a_frozen_master_kills_it_at_once(controller: MfsController) -> None:
    """A SIGTERM would stay pending on the stopped process until the 10 s timeout."""
    controller.freeze_master()
    begun = time.monotonic()
    controller.stop_master()
    assert controller.master.poll() == -9 and time.monotonic() - begun < 2
