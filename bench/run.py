"""Benchmark mockserver beside a bare Starlette route (this machine's ceiling) and Stoplight Prism
mocking the same spec; prints requests/s, p50/p99 and the ratios. See bench/README.md.

    python3 bench/run.py [--duration 5] [--connections 32] [--vendor karmabot ...] [--no-prism]
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PRISM_DIR = Path(__file__).resolve().parent / ".prism"  # npm installs Prism here on first use


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 60, headers: dict | None = None, ok=(200,)) -> float:
    """Seconds until `url` answers one of `ok`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(url, headers=headers or {}, timeout=2).status_code in ok:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, *, method="GET", headers=None, body=None, duration=5, connections=32, threads=2,
        lua: str | None = None) -> dict:
    """requests/s, p50, p99 and the longest (ms) and the share of non-2xx answers, from wrk;
    `lua`, a script of its own, instead of one request made of method, headers and body."""
    if lua is None:
        lua = f"wrk.method = {json.dumps(method)}\n"
        if body is not None:
            lua += f"wrk.body = {json.dumps(json.dumps(body))}\nwrk.headers['Content-Type'] = 'application/json'\n"
        for name, value in (headers or {}).items():
            lua += f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s",
                              script.name, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)

    def ms(label):
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    value, unit = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out).groups()
    longest = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = int(match.group(1)) if (match := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50"), "p99": ms("99"),
            "max": longest,
            "requests": total, "non_2xx": non_2xx / max(total, 1)}


class Process:
    def __init__(self, command: list[str], cwd=None):
        self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def serve(*arguments: str) -> tuple[Process, str]:
    """`mockserver serve` on a free port, clock frozen, no access log (its cost is not the
    server's), once it answers: the process and its URL."""
    port = free_port()
    mock = Process([sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--clock", "frozen",
                    "--log-level", "warning", *arguments])
    server = f"http://127.0.0.1:{port}"
    wait_for(server + "/__admin/health")
    return mock, server


def scenarios(admin: httpx.Client, vendors: list[str]) -> list[tuple]:
    """(vendor, scenario, path under the base path, wrk options) for a read, a write, an auth
    failure and a 429 per vendor; the read and write use a tenant with limits lifted."""
    free = admin.post("/__admin/tenants", json={"rate_limits": False}).json()
    limited = admin.post("/__admin/tenants").json()
    state = admin.get(f"/__admin/tenants/{free['tenant']}/state").json()
    h = {name: free["credentials"][name]["headers"] for name in vendors}
    lh = {name: limited["credentials"][name]["headers"] for name in vendors}
    out = []
    if "karmabot" in vendors:
        users = state["karmabot"]["users"]
        out += [("karmabot", "read", "/users", {"headers": h["karmabot"]}),
                ("karmabot", "write", "/pluses", {"method": "POST", "headers": h["karmabot"],
                 "body": {"user_ids": [users[1]["id"]], "from_id": users[0]["id"]}}),
                ("karmabot", "auth failure", "/users", {}),
                ("karmabot", "429", "/values", {"headers": lh["karmabot"]})]
    if "dailybot" in vendors:
        other = free["credentials"]["dailybot"]["other_users"][0]["user_uuid"]
        out += [("dailybot", "read", "/kudos/?limit=10", {"headers": h["dailybot"]}),
                ("dailybot", "write", "/kudos/", {"method": "POST", "headers": h["dailybot"],
                 "body": {"receivers": [other], "content": "bench"}}),
                ("dailybot", "auth failure", "/kudos/", {}),
                ("dailybot", "429", "/kudos/", {"method": "POST", "headers": lh["dailybot"],
                 "body": {"receivers": [other]}})]
    if "kudosnow" in vendors:
        users = state["kudosnow"]["users"]
        body = {"sender": {"kind": "email", "value": users[0]["email"]}, "message": {"body": "bench"},
                "recipients": [{"kind": "email", "value": users[1]["email"]}], "level": "good_job", "qualities": []}
        out += [("kudosnow", "read", "/redemptions", {"headers": h["kudosnow"]}),
                ("kudosnow", "write", "/kudos", {"method": "POST", "headers": h["kudosnow"], "body": body}),
                ("kudosnow", "auth failure", "/redemptions", {}),
                ("kudosnow", "429", "/redemptions", {"headers": lh["kudosnow"]})]
    if "community" in vendors:  # documents no rate limit
        out += [("community", "read", "/boards", {"headers": h["community"]}),
                ("community", "write", "/boards", {"method": "POST", "headers": h["community"],
                 "body": {"board_name": "b", "is_private": False, "hidden_type": 0, "permission_for": 10,
                          "needs_approval": False}}),
                ("community", "auth failure", "/boards", {})]
    if "corteza" in vendors:  # documents no rate limit
        channel = state["corteza"]["channels"][0]["channelID"]
        out += [("corteza", "read", "/channels/", {"headers": h["corteza"]}),
                ("corteza", "write", f"/channels/{channel}/messages/",
                 {"method": "POST", "headers": h["corteza"], "body": {"message": "bench"}}),
                ("corteza", "auth failure", "/channels/", {})]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--vendor", action="append", dest="vendors")
    parser.add_argument("--no-prism", action="store_true", help="skip Prism (no npm needed)")
    parser.add_argument("--rss-requests", type=int, default=100_000)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    vendors = args.vendors or ["karmabot", "dailybot", "community", "corteza", "kudosnow"]
    options = {"duration": args.duration, "connections": args.connections}

    port = free_port()
    started = time.monotonic()
    mock = Process([sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--clock", "frozen",
                    "--log-level", "warning"])
    server = f"http://127.0.0.1:{port}"
    default_key = {"Authorization": "Bearer krm_1_d020104626bf82b1420f719a67ad9420"}
    wait_for(server + "/karmabot/api/v1/users", headers=default_key)
    startup = time.monotonic() - started
    rss_start = mock.rss_mib()
    admin = httpx.Client(base_url=server)
    base = {v["name"]: v["base_path"] for v in admin.get("/__admin/vendors").json()["vendors"]}
    plan = scenarios(admin, vendors)
    results = {}
    try:
        for vendor, name, path, wrk_options in plan:
            url = server + base[vendor] + path
            if name == "429":  # use up the limit first, so the run measures refusals
                wrk(url, **{**wrk_options, **options, "duration": 1})
            results[vendor, name] = wrk(url, **wrk_options, **options)
        payloads = {vendor: httpx.get(server + base[vendor] + path, headers=o["headers"]).content
                    for vendor, name, path, o in plan if name == "read"}
        read_path, read_options = next((path, o) for v, n, path, o in plan if (v, n) == (vendors[0], "read"))
        read_url = server + base[vendors[0]] + read_path
        rss_before = mock.rss_mib()
        done = 0
        while done < args.rss_requests:
            done += wrk(read_url, headers=read_options["headers"], duration=2, connections=args.connections)["requests"]
        rss_after = mock.rss_mib()
    finally:
        mock.stop()

    ceiling = baseline(payloads, options)
    prism = {} if args.no_prism else prism_runs(plan, options)

    print(f"\nstart-up to first 200 (all five vendors): {startup:.2f} s")
    print(f"RSS: {rss_start:.1f} MiB at start-up; {rss_before:.1f} MiB after the runs above, "
          f"{rss_after:.1f} MiB after {done:,} more list reads\n")
    print(f"{'vendor':<10} {'scenario':<13} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}  ratios")
    for (vendor, name), r in results.items():
        ratios = []
        if name == "read":
            ratios.append(f"{r['rps'] / ceiling[vendor]['rps']:.0%} of bare Starlette")
        if (vendor, name) in prism:
            theirs = prism[vendor, name]
            ratios.append(f"{r['rps'] / theirs['rps']:.1f}x Prism req/s, p99 {r['p99'] / theirs['p99']:.2f}x Prism's")
        print(f"{vendor:<10} {name:<13} {r['rps']:>8.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['non_2xx']:>8.0%}  "
              + "; ".join(ratios))
    for vendor, r in ceiling.items():
        print(f"{'starlette':<10} {vendor + ' read':<22} {r['rps']:>8.0f} {r['p50']:>8.1f} {r['p99']:>8.1f}")
    for (vendor, name), r in prism.items():
        print(f"{'prism':<10} {vendor + ' ' + name:<22} {r['rps']:>8.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} "
              f"{r['non_2xx']:>8.0%}")


def baseline(payloads: dict[str, bytes], options: dict) -> dict:
    """Each vendor's read answer from a bare Starlette route under uvicorn: the ceiling on this
    machine for that JSON."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        for vendor, payload in payloads.items():
            Path(folder, f"{vendor}.json").write_bytes(payload)
        process = Process([sys.executable, str(Path(__file__).parent / "starlette_baseline.py"), str(port), folder])
        try:
            wait_for(f"http://127.0.0.1:{port}/{next(iter(payloads))}")
            return {vendor: wrk(f"http://127.0.0.1:{port}/{vendor}", **options) for vendor in payloads}
        finally:
            process.stop()


def install_prism() -> Path:
    """Prism's command, installed from npm on first use."""
    prism = PRISM_DIR / "node_modules" / ".bin" / "prism"
    if not prism.exists():
        PRISM_DIR.mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", str(PRISM_DIR), "@stoplight/prism-cli@5.16.0"],
                       check=True)
    return prism


def prism_runs(plan: list[tuple], options: dict) -> dict:
    """Prism (`@stoplight/prism-cli` from npm) mocking each vendor's spec, measured on the same
    scenarios. Prism serves a spec's paths at its root and answers a 429 only when asked to
    (`Prefer: code=429`, its own convention)."""
    prism = install_prism()
    results = {}
    for vendor in dict.fromkeys(entry[0] for entry in plan):
        port = free_port()
        process = Process([str(prism), "mock", str(ROOT / "specs" / f"{vendor}.yaml"), "-p", str(port),
                           "-h", "127.0.0.1"])
        try:
            wait_for(f"http://127.0.0.1:{port}/", ok=range(100, 600))
            for name, path, wrk_options in ((n, p, o) for v, n, p, o in plan if v == vendor):
                if name == "429":
                    wrk_options = {**wrk_options, "headers": {**wrk_options["headers"], "Prefer": "code=429"}}
                results[vendor, name] = wrk(f"http://127.0.0.1:{port}{path}", **wrk_options, **options)
        finally:
            process.stop()
    return results


if __name__ == "__main__":
    main()
