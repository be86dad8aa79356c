"""Child processes that end when their parent does, kill -9 included.

A render process (or any worker) started by a command must not outlive it: a
`kill -9` of the command alone, as `timeout` or the OOM killer do, would
otherwise leave it sleeping for ever, holding its memory, and the
multiprocessing resource tracker with it (the tracker ends once no process
holds its pipe). On Linux the kernel delivers SIGKILL to the child when its
parent dies (`PR_SET_PDEATHSIG`); elsewhere a daemon thread watches for the
parent to change. Standard library only: every layer may call it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_SECONDS = 1.0


def bind_to_parent(parent_pid: int) -> None:
    """Make this process end when `parent_pid`, its parent, ends.

    Call it first thing in the child (a pool initializer); `parent_pid` is the
    parent's `os.getpid()`, passed in, so that a parent that died before the call
    is noticed too.
    """
    if not _pdeathsig():
        threading.Thread(
            target=_watch, args=(parent_pid,), name="campaignctl-lifeline", daemon=True
        ).start()
    if os.getppid() != parent_pid:  # the parent is already gone: we were re-parented
        os._exit(1)


def _pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_SECONDS)
    os._exit(1)
