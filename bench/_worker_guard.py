"""Runs a worker command and makes sure it dies with the benchmark that started it.

    python bench/_worker_guard.py GRACE_SECONDS -- engage worker --processes 1 ...

The benchmark holds a pipe on this process's stdin. When the pipe closes (the benchmark
finished, failed, or was killed outright) or the worker exits, the guard sends SIGTERM to
the worker and, after GRACE_SECONDS, SIGKILL to the worker's whole process group, which
holds nothing but the worker and the processes it forked. Standard library only: it runs
as a script, without the project on its path.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys


def _stop(worker: subprocess.Popen[bytes], grace: float) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=grace)
    # whatever the worker forked and left behind: its group is its own (new session)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    grace = float(sys.argv[1])
    # Ctrl-C reaches the benchmark, which then closes the pipe; SIGTERM means "stop now".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    worker = subprocess.Popen(sys.argv[3:], stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        while worker.poll() is None:
            readable, _, _ = select.select([sys.stdin.buffer], [], [], 0.5)
            if readable and not os.read(sys.stdin.fileno(), 4096):
                break  # EOF: the benchmark is gone or done
        else:
            return worker.returncode or 1  # the worker ended on its own: the bench must know
    finally:
        _stop(worker, grace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
