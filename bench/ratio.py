"""One read over HTTP, three servers: Karma bot's list read with auth (a cached answer) from
`mockserver serve` with its default options (an access line a request), from a bare Starlette
route returning the same bytes, and from Prism mocking the same spec; wrk -t1 -c32, in rounds
that take each server in turn, and each round's ratios. See bench/README.md.

    python3 bench/ratio.py [--duration 5] [--rounds 3] [--no-prism] [--checkout PATH ...]

`--checkout` measures the mock of another checkout too (e.g. a worktree of the commit before), in
the same rounds.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import httpx
from run import ROOT, Process, free_port, install_prism, wait_for, wrk

PATH = "/karmabot/api/v1/users"
HEADERS = {"Authorization": "Bearer krm_1_d020104626bf82b1420f719a67ad9420"}  # the default tenant's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-prism", action="store_true", help="skip Prism (no npm needed)")
    parser.add_argument("--checkout", action="append", default=[], type=Path, help="another checkout's mock too")
    args = parser.parse_args()
    servers: dict[str, tuple[Process, str]] = {}
    try:
        for checkout in [ROOT, *args.checkout]:  # `serve` as a user starts it: its defaults, only a port
            port = free_port()
            servers[f"mock {checkout.name}"] = (Process([sys.executable, "-m", "mockserver", "serve", "--port",
                                                         str(port)], cwd=checkout), f"http://127.0.0.1:{port}{PATH}")
        for _, url in servers.values():
            wait_for(url, headers=HEADERS)
        payload = httpx.get(next(iter(servers.values()))[1], headers=HEADERS).content
        folder = tempfile.mkdtemp()
        Path(folder, "karmabot.json").write_bytes(payload)
        port = free_port()
        servers["starlette"] = (Process([sys.executable, str(Path(__file__).parent / "starlette_baseline.py"),
                                         str(port), folder]), f"http://127.0.0.1:{port}/karmabot")
        if not args.no_prism:
            port = free_port()
            servers["prism"] = (Process([str(install_prism()), "mock", str(ROOT / "specs" / "karmabot.yaml"), "-p",
                                         str(port), "-h", "127.0.0.1"]), f"http://127.0.0.1:{port}/users")
        for _, url in servers.values():
            wait_for(url, headers=HEADERS)
        print(f"{'round':<6} {'server':<22} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  ratios")
        for round_ in range(1, args.rounds + 1):
            results = {}
            for name, (_, url) in servers.items():
                wrk(url, headers=HEADERS, duration=1, connections=32, threads=1)  # warm-up
                results[name] = wrk(url, headers=HEADERS, duration=args.duration, connections=32, threads=1)
            for name, result in results.items():
                ratios = ""
                if name.startswith("mock"):
                    ratios = f"{result['rps'] / results['starlette']['rps']:.2f}x bare Starlette"
                    if "prism" in results:
                        ratios += f", {result['rps'] / results['prism']['rps']:.1f}x Prism"
                print(f"{round_:<6} {name:<22} {result['rps']:>8.0f} {result['p50']:>8.2f} {result['p99']:>8.2f}  "
                      f"{ratios}", flush=True)
    finally:
        for process, _ in servers.values():
            process.stop()


if __name__ == "__main__":
    main()
