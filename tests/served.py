"""`mockserver serve` (or `proxy`) in a real process on a free port, as a user runs it."""

import os
import socket
import subprocess
import sys
import threading
import time

import httpx

from mockserver.answercheck import MARK


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    started: list["Served"] = []  # every one, for the suite's check that answers keep to the spec (conftest)

    def __init__(self, *args, cwd=None, command="serve"):
        """`cwd`: where to run it (`python -m` imports the package found there first);
        `command`: `serve`, or `proxy` (which answers the same health check)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "mockserver", command, "--port", str(self.port), *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                                        env=os.environ | {"PYTHONUNBUFFERED": "1"})
        # Read as it comes: a server logging a line per request must never block on a full pipe.
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()
        Served.started.append(self)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/__admin/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(self.output())
            time.sleep(0.05)

    def drifts(self) -> list[str]:
        """The answer drifts it has logged so far (it checks its answers: conftest sets MOCKSERVER_CHECK_ANSWERS)."""
        return [line for line in self.lines if MARK in line]

    def output(self) -> str:
        """Everything it printed, once it has ended."""
        self.process.wait(timeout=10)
        self.reader.join(timeout=10)
        return "".join(self.lines)

    def stop(self) -> str:
        self.process.terminate()
        return self.output()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self.process.kill()
        self.output()
