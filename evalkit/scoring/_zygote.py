"""The sandbox's process side: a "zygote" that forks math-check workers (see sandbox.py).

The zygote is started as a fresh interpreter (never a fork of the evaluating process, which may
hold threads and locks), imports and warms up math-verify once, then forks a worker per request
and hands the worker's socket back to the parent with SCM_RIGHTS. Forking a warm zygote makes a
replacement worker cost milliseconds instead of a half-second interpreter start.

Workers speak length-prefixed JSON frames (_frames.py; never pickle: the parent must not unpickle
bytes from a process that handles untrusted input). The zygote puts itself and its workers in a
new process group and, when the parent goes away, kills the whole group, so no worker stuck in
big-integer arithmetic outlives the evaluation.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

from evalkit.scoring._frames import read_frame, write_frame


def _limit_memory(memory_mb: int) -> None:
    if memory_mb <= 0:
        return
    try:
        import resource

        cap = memory_mb * 1024 * 1024
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):
        pass  # the wall-clock kill still bounds every check


def worker_loop(sock: socket.socket, memory_mb: int) -> None:
    """Answer [gold, pred, options] with [equal, reason, recycle] until EOF."""
    _limit_memory(memory_mb)
    from evalkit.scoring import _mathcore

    sock.sendall(b"R")  # ready: the limits are in place before the parent sends anything
    while True:
        raw = read_frame(sock)
        if raw is None:
            return
        recycle = False
        try:
            gold, pred, options = json.loads(raw)
            if "check" in options:  # another grader for the cross-grader diff (_plain_graders.py)
                from evalkit.scoring import _plain_graders

                equal, reason = _plain_graders.run(str(options["check"]), str(gold), str(pred))
            else:
                equal, reason = _mathcore.compare(str(gold), str(pred), dict(options))
        except MemoryError:
            # The heap may be damaged: answer, then exit so the parent starts a fresh worker.
            equal, reason, recycle = False, "memory_limit", True
        except RecursionError:
            equal, reason = False, "too_deep"
        except Exception as e:  # a parser bug must not take the worker down
            equal, reason = False, f"check_error:{type(e).__name__}"
        try:
            write_frame(sock, json.dumps([bool(equal), str(reason), recycle]).encode())
        except OSError:
            return
        if recycle:
            return


def main(ctrl_fd: int, memory_mb: int) -> None:
    """Zygote loop: one byte from the parent = fork one worker and send back (pid, socket)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent starts us in a new session, so our process group holds only us and our workers.
    own_group = os.getpgid(0) == os.getpid()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped automatically
    ctrl = socket.socket(fileno=ctrl_fd)
    from evalkit.scoring import _mathcore  # noqa: F401  (import and warm up before forking)

    try:
        os.write(ctrl.fileno(), b"R")  # ready
        while True:
            req = ctrl.recv(1)
            if not req:
                break
            a, b = socket.socketpair()
            pid = os.fork()
            if pid == 0:
                try:
                    ctrl.close()
                    a.close()
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    worker_loop(b, memory_mb)
                finally:
                    os._exit(0)
            b.close()
            socket.send_fds(ctrl, [struct.pack("!i", pid)], [a.fileno()])
            a.close()
    except OSError:
        pass
    finally:
        try:
            if own_group:
                os.killpg(0, signal.SIGKILL)  # workers and ourselves
        finally:
            os._exit(0)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
