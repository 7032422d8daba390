"""A pool of worker processes for the symbolic math check, with a hard wall-clock kill and a memory cap.

Why processes: math-verify's own timeouts use SIGALRM, which only works in the main thread and
cannot interrupt big-integer arithmetic (``9^{9^{9^{9}}}`` hangs inside sympy for minutes). Only a
separate process that the parent kills bounds such a check; ``RLIMIT_AS`` in the worker turns a
runaway allocation into a MemoryError instead of swapping the machine.

Why a pool: starting Python with sympy costs ~0.5 s, a check ~1 ms. Workers are forked by a
"zygote" process (``_zygote.py``) that has imported and warmed up math-verify once, so replacing a
killed worker costs milliseconds. (multiprocessing's forkserver/spawn would re-run the user's
``__main__`` in the workers; forking the evaluating process itself is unsafe once it has threads.)
The pool is thread-safe: each check borrows one idle worker, so N threads keep N workers busy.
POSIX only (fork, SCM_RIGHTS, RLIMIT_AS).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from evalkit.scoring._frames import frame, read_frame

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_MB = 1536
_ZYGOTE_START_TIMEOUT_S = 60.0


class SandboxError(RuntimeError):
    """The sandbox could not start a worker process."""


@dataclass
class _Worker:
    pid: int
    sock: socket.socket
    checks: int = 0


@dataclass
class SandboxStats:
    """What a pool did: `evalkit grade` prints it, so timeouts and crashes are never silent."""

    checks: int = 0
    timeouts: int = 0
    crashes: int = 0
    memory_kills: int = 0
    started: int = 0


def _is_dead(w: _Worker) -> bool:
    """An idle worker never has anything to read: a readable socket means EOF (it died)."""
    try:
        readable, _, _ = select.select([w.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class MathSandbox:
    """A thread-safe pool of math-check worker processes forked from one warm zygote."""

    def __init__(self, workers: int | None = None, memory_mb: int | None = None) -> None:
        env_workers = os.environ.get("EVALKIT_MATH_WORKERS")
        env_mem = os.environ.get("EVALKIT_MATH_MEMORY_MB")
        self.size = max(1, workers or (int(env_workers) if env_workers else min(2, os.cpu_count() or 1)))
        self.memory_mb = memory_mb if memory_mb is not None else int(env_mem or DEFAULT_MEMORY_MB)
        self.stats = SandboxStats()
        self._cond = threading.Condition()
        self._spawn_lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: dict[int, _Worker] = {}
        self._live = 0
        self._closed = False
        self._zygote: subprocess.Popen[bytes] | None = None
        self._ctrl: socket.socket | None = None

    # -- zygote and workers -------------------------------------------------------------------
    def _start_zygote(self) -> None:
        parent, child = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            self._zygote = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import sys; from evalkit.scoring._zygote import main; "
                    "main(int(sys.argv[1]), int(sys.argv[2]))",
                    str(child.fileno()),
                    str(self.memory_mb),
                ],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: see _zygote.main
            )
        finally:
            child.close()
        parent.settimeout(_ZYGOTE_START_TIMEOUT_S)
        try:
            ready = parent.recv(1)
        except TimeoutError:
            ready = b""
        if ready != b"R":
            self._zygote.kill()
            parent.close()
            self._zygote = None
            raise SandboxError("the math sandbox could not start its worker process (see the error above)")
        parent.settimeout(None)
        self._ctrl = parent

    def _spawn(self) -> _Worker:
        with self._spawn_lock:
            for _attempt in (1, 2):
                if self._ctrl is None or self._zygote is None or self._zygote.poll() is not None:
                    self._start_zygote()
                assert self._ctrl is not None
                try:
                    self._ctrl.sendall(b"S")
                    self._ctrl.settimeout(_ZYGOTE_START_TIMEOUT_S)
                    msg, fds, _flags, _addr = socket.recv_fds(self._ctrl, 16, 1)
                    self._ctrl.settimeout(None)
                except OSError:
                    msg, fds = b"", []
                if len(msg) == 4 and len(fds) == 1:
                    (pid,) = struct.unpack("!i", msg)
                    sock = socket.socket(fileno=fds[0])
                    sock.settimeout(_ZYGOTE_START_TIMEOUT_S)
                    try:
                        ready = sock.recv(1)
                    except OSError:
                        ready = b""
                    if ready == b"R":
                        self.stats.started += 1
                        return _Worker(pid, sock)
                    self._kill(_Worker(pid, sock))
                    continue
                for fd in fds:
                    os.close(fd)
                self._stop_zygote()
        raise SandboxError("the math sandbox could not start a worker process (its zygote stopped answering)")

    def _stop_zygote(self) -> None:
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None
        if self._zygote is not None:
            try:
                self._zygote.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait(timeout=2)
            self._zygote = None

    @staticmethod
    def _kill(w: _Worker) -> None:
        try:
            os.kill(w.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            w.sock.close()
        except OSError:
            pass

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise SandboxError("the math sandbox is closed")
                while self._idle:
                    w = self._idle.pop()
                    if _is_dead(w):  # killed from outside while idle
                        self._live -= 1
                        self._kill(w)
                        continue
                    self._busy[w.pid] = w
                    return w
                if self._live < self.size:
                    self._live += 1
                    break
                self._cond.wait()
        try:
            w = self._spawn()
        except BaseException:
            with self._cond:
                self._live -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._busy[w.pid] = w
        return w

    def _release(self, w: _Worker, alive: bool) -> None:
        with self._cond:
            self._busy.pop(w.pid, None)
            if alive and not self._closed:
                self._idle.append(w)
            else:
                self._live -= 1
                self._kill(w)
            self._cond.notify()

    # -- the check ----------------------------------------------------------------------------
    def check(
        self,
        gold: str,
        pred: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        options: dict[str, Any] | None = None,
    ) -> tuple[bool, str]:
        """Run one equivalence check in a worker; (False, "timeout") when it overruns ``timeout_s``."""
        request = frame(json.dumps([gold, pred, dict(options or {})]).encode())
        w = self._acquire()
        alive = False
        with self._cond:
            self.stats.checks += 1
        try:
            try:
                w.sock.settimeout(None)
                w.sock.sendall(request)
            except OSError:
                # The idle worker died (killed from outside): replace it once.
                self._kill(w)
                with self._cond:
                    self._busy.pop(w.pid, None)
                w = self._spawn()
                with self._cond:
                    self._busy[w.pid] = w
                w.sock.sendall(request)
            try:
                raw = read_frame(w.sock, time.monotonic() + timeout_s)
            except TimeoutError:
                with self._cond:
                    self.stats.timeouts += 1
                return False, "timeout"
            except OSError:
                raw = None
            if raw is None:
                with self._cond:
                    self.stats.crashes += 1
                return False, "worker_crashed"
            equal, reason, recycle = json.loads(raw)
            w.checks += 1
            if recycle:
                with self._cond:
                    self.stats.memory_kills += 1
            else:
                alive = True
            return bool(equal), str(reason)
        finally:
            self._release(w, alive)

    def start(self) -> None:
        """Start the zygote and every worker now, instead of on the first checks (a one-off
        ~1 s cost that a caller may want out of its timings)."""
        workers = [self._acquire() for _ in range(self.size)]
        for w in workers:
            self._release(w, True)

    def close(self) -> None:
        """Stop every worker and the zygote (also registered with atexit)."""
        with self._cond:
            self._closed = True
            workers = self._idle + list(self._busy.values())
            self._idle = []
            self._busy = {}
            self._cond.notify_all()
        for w in workers:
            self._kill(w)
        with self._spawn_lock:
            self._stop_zygote()

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (idle ones found dead are dropped first)."""
        with self._cond:
            alive = []
            for w in self._idle:
                if _is_dead(w):
                    self._live -= 1
                    self._kill(w)
                else:
                    alive.append(w)
            self._idle = alive
            return [w.pid for w in self._idle] + list(self._busy)


_default: MathSandbox | None = None
_default_lock = threading.Lock()


def default_sandbox_stats() -> SandboxStats | None:
    """A copy of the process-wide pool's counts; None when no check has needed the pool."""
    with _default_lock:
        if _default is None:
            return None
        with _default._cond:
            return replace(_default.stats)


def default_sandbox() -> MathSandbox:
    """The process-wide pool (created on first use, closed at exit)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = MathSandbox()
            atexit.register(_default.close)
        return _default
