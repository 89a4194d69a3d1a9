"""A private redis-server (Debian's package; `.ci/run` installs it) on a Unix socket, that a test
may kill -9 and start again empty, as a Redis restarted without persistence."""

import shutil
import subprocess
import time
from pathlib import Path

import redis


class RedisServer:
    def __init__(self, directory: Path):
        self.binary = shutil.which("redis-server")
        assert self.binary, "these tests need redis-server: apt-get install redis-server"
        self.socket = Path(directory) / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen([self.binary, "--port", "0", "--unixsocket", str(self.socket), "--save", "",
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        """kill -9: everything it held is gone."""
        self.process.kill()
        self.process.wait(timeout=10)
        self.socket.unlink(missing_ok=True)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
