"""`mockserver serve`: every vendor, in one process or in several workers sharing state through Redis."""

import asyncio
import contextlib
import fcntl
import gc
import importlib.util
import json
import os
import re
import socket
from collections.abc import Iterable, Iterator
from importlib.metadata import version
from typing import Any, TypeVar

import click
import uvicorn
from uvicorn.supervisors import Multiprocess

from mockserver import ADMIN_TOKEN_VARIABLE, answercheck, handover, logs
from mockserver.app import MockServer
from mockserver.faults import HEADER_NAME, HEADER_VALUE
from mockserver.protocol import HeadDeadlineProtocol
from mockserver.records import StateError
from mockserver.tenants import DEFAULT_TENANT
from mockserver.vendor import Vendor, discover

T = TypeVar("T")
FUZZ_PHASES = ("positive", "examples", "coverage", "fuzzing", "stateful")  # ours, then Schemathesis' in its order


@click.group()
@click.version_option(package_name="mockserver", message="%(prog)s %(version)s")
def main() -> None:
    """A local, stateful, deterministic stand-in for vendor HTTP APIs."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same data.")
@click.option("--vendor", "vendors", multiple=True, metavar="NAME",
              help="Serve only this vendor (repeatable). Default: all.")
@click.option("--clock", type=click.Choice(["ticking", "frozen"]), default="ticking", show_default=True,
              help="ticking: time passes from the fixed start instant; frozen: it moves only through the admin API.")
@click.option("--journal-limit", default=1000, show_default=True, type=click.IntRange(1),
              help="Requests kept in each tenant's journal; the oldest drop out.")
@click.option("--webhook-allow", "webhook_allow", multiple=True, metavar="HOST",
              help="Also deliver webhooks to this host (repeatable). Loopback is always allowed.")
@click.option("--state-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="Restore tenants from this SQLite file at start and save every change to it before answering.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="Worker processes. More than one needs --redis; they then behave exactly like one.")
@click.option("--redis", "redis_url", metavar="URL",
              help="Share state, clocks and rate-limit counters through this Redis (redis://HOST:PORT or unix:///PATH).")
@click.option("--redis-prefix", default="mockserver", show_default=True, metavar="PREFIX",
              help="This server's namespace in Redis; cleared at start (but with --redis-join).")
@click.option("--redis-join", is_flag=True,
              help="Join the state other servers keep under the prefix (one server on several ports or machines) "
                   "instead of starting it afresh.")
@click.option("--admin-token", envvar=ADMIN_TOKEN_VARIABLE, metavar="TOKEN",
              help=f"Require 'Authorization: Bearer TOKEN' on /__admin/* (not health). Also ${ADMIN_TOKEN_VARIABLE}. "
                   "Without one, only loopback clients may use the admin API.")
@click.option("--cors/--no-cors", default=True, show_default=True,
              help="Answer browsers' CORS preflights and let any origin read the vendors' answers (not the admin API's).")
@click.option("--log-level", type=click.Choice(logs.LEVELS), default="info", show_default=True,
              help="info: an access line per vendor request (vendor, tenant, operation, status, duration).")
@click.option("--log-format", type=click.Choice(logs.FORMATS), default="text", show_default=True)
@click.option("--check-answers", is_flag=True, envvar=answercheck.VARIABLE,
              help="Check every answer against its operation's documented responses; a drift is logged as a warning "
                   f"and named in the answer's {answercheck.HEADER} header. Also ${answercheck.VARIABLE}=1.")
def serve(host: str, port: int, seed: int, vendors: tuple[str, ...], clock: str, journal_limit: int,
          webhook_allow: tuple[str, ...], state_file: str | None, workers: int, redis_url: str | None,
          redis_prefix: str, redis_join: bool, admin_token: str | None, cors: bool, log_level: str,
          log_format: str, check_answers: bool) -> None:
    """Start the server."""
    if workers > 1 and not redis_url:
        raise click.BadParameter("several workers share their state through Redis: give --redis URL",
                                 param_hint="--workers")
    if state_file and redis_url:
        raise click.BadParameter("a state file keeps one process's state; with --redis, Redis keeps it "
                                 "(make it durable with Redis's appendonly)", param_hint="--state-file")
    if redis_join and not redis_url:
        raise click.BadParameter("joins the state kept in Redis: give --redis URL", param_hint="--redis-join")
    if redis_url and importlib.util.find_spec("redis") is None:
        raise click.BadParameter("sharing state through Redis needs the workers extra: "
                                 "pip install 'mockserver[workers]'", param_hint="--redis")
    logs.configure(log_level, log_format)
    if state_file:
        _lock(state_file)
    config: dict[str, Any] = {"seed": seed, "vendors": list(vendors) or None, "ticking": clock == "ticking",
              "journal_limit": journal_limit, "webhook_allow": list(webhook_allow), "state_file": state_file,
              "redis_url": redis_url, "redis_prefix": redis_prefix, "admin_token": admin_token, "cors": cors,
              "check_answers": check_answers}
    try:
        server = MockServer(**config)
    except StateError as exc:
        raise click.BadParameter(str(exc), param_hint="--state-file") from None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--vendor") from None
    listening, root = _listen(host, port, reuse_port=workers > 1)
    click.echo(f"mockserver {version('mockserver')} (seed {seed}, clock {clock}) on {root}; admin API at {root}/__admin")
    credentials = server.store.tenants[DEFAULT_TENANT].credentials()
    for vendor in server.vendors:
        headers = ", ".join(f"{key}: {value}" for key, value in credentials[vendor.name]["headers"].items())
        click.echo(f"  {vendor.name:<10} {root}{vendor.base_path}  ({headers}; Swagger UI {root}{vendor.base_path}/ui/)")
    for note in server.notes:
        click.echo(f"  state file {state_file}: {note}")
    if check_answers:
        click.echo(f"  answers checked against the specs: a drift is logged and named in {answercheck.HEADER}")
    if admin_token:
        click.echo("  admin API: send 'Authorization: Bearer <the admin token>' (health needs none)")
    elif host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"  admin API: refused to clients not on this machine, as there is no admin token; "
                   f"give one with --admin-token TOKEN or ${ADMIN_TOKEN_VARIABLE}")
    if redis_url:
        _open_redis(redis_url, redis_prefix, redis_join)
    if workers == 1:
        steady_collector()
        uvicorn.Server(uvicorn.Config(server, log_level="warning", access_log=False,
                                      http=HeadDeadlineProtocol)).run(sockets=[listening])
        return
    os.environ[WORKER_CONFIG] = json.dumps(config | {"log": [log_level, log_format],
                                                     "handover": [os.urandom(6).hex(), workers]})
    click.echo(f"  {workers} worker processes, sharing state through {redis_url}")
    # The socket bound above, handed to the workers as it is (uvicorn's `fd=` would take it for a
    # Unix socket, and TCP_NODELAY would be lost: 40 ms per answer on a kept-alive connection).
    workers_config = uvicorn.Config(f"{__name__}:worker", factory=True, workers=workers, log_level="warning",
                                    access_log=False, http=handover.HandingProtocol)
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(workers_config, sockets=[listening]).run()


WORKER_CONFIG = "MOCKSERVER_WORKER_CONFIG"


def worker() -> MockServer:
    """One worker process's server (uvicorn calls this in each), configured by `serve`."""
    config = json.loads(os.environ[WORKER_CONFIG])
    logs.configure(*config.pop("log"))
    name, workers = config.pop("handover")
    server = MockServer(**config)
    handover.installed = handover.Handover(server.state, name, workers)
    asyncio.get_running_loop().call_soon(handover.installed.start)  # uvicorn loads the app in its loop
    steady_collector()
    return server


def _open_redis(url: str, prefix: str, join: bool) -> None:
    """A fresh server drops what an earlier one left under the prefix; a joining one keeps it."""
    import redis

    try:
        client = redis.Redis.from_url(url)
        _check_redis(client)
        if join:
            state = "joined" if client.exists(f"{prefix}:epoch") else "started (nothing to join yet)"
            click.echo(f"  shared state in {url} under {prefix!r}: {state}")
            return
        pattern = "".join(f"[{char}]" if char in "*?[]\\" else char for char in prefix) + ":*"
        for keys in _batches(client.scan_iter(match=pattern, count=1000), 1000):
            client.unlink(*keys)
    except (redis.RedisError, ValueError) as exc:
        raise click.BadParameter(f"cannot use Redis at {url}: {exc}", param_hint="--redis") from None


def _lock(state_file: str) -> None:
    """Hold the state file for this process's life (flock, beside SQLite's own locks): a second
    server on the same file would have every other write of its own lost. Refused at start."""
    try:
        fd = os.open(state_file, os.O_RDWR | os.O_CREAT, 0o600)  # created private: it holds credentials
    except OSError as exc:
        raise click.BadParameter(f"cannot use {state_file} as a state file: {exc}", param_hint="--state-file") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise click.BadParameter(f"{state_file} is in use by another mockserver: one server per state file",
                                 param_hint="--state-file") from None
    _held.append(fd)  # never closed: closing any descriptor of the file would drop SQLite's locks too


_held: list[int] = []  # the state file's descriptor, locked


def _check_redis(client: Any) -> None:
    """Refuse a Redis that may evict keys (an acknowledged change could vanish); say when it keeps
    nothing on disk, or will not tell (CONFIG refused, as managed services do)."""
    import redis

    try:
        settings = {**client.config_get("maxmemory"), **client.config_get("maxmemory-policy"),
                    **client.config_get("appendonly")}
    except redis.ResponseError:
        click.echo("  Redis would not show its settings (CONFIG GET refused): it must never evict keys "
                   "(maxmemory-policy noeviction), and needs appendonly yes for state that outlives a restart")
        return
    policy = settings.get("maxmemory-policy", "noeviction")
    if int(settings.get("maxmemory", 0) or 0) > 0 and policy != "noeviction":
        raise click.BadParameter(f"Redis may evict keys when full (maxmemory-policy {policy}), and with them "
                                 "acknowledged changes: set maxmemory-policy noeviction (or maxmemory 0)",
                                 param_hint="--redis")
    if settings.get("appendonly") != "yes":
        click.echo("  Redis keeps the shared state in memory only (appendonly no): a restart of Redis "
                   "starts every tenant over")


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def steady_collector() -> None:
    """Keep the garbage collector's pauses short for the life of the server process.

    Everything alive now (code, specs, tenants), and whatever survives each full collection from
    then on, is frozen out of the collector's sight: a mock server's data is long-lived and free
    of reference cycles (refcounting frees deleted tenants), so scanning it again on every full
    collection would only stall answers. Full collections are also let run as often as CPython
    allows, so each has little new to scan (measured in bench/README.md, point 3)."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 1)
    gc.callbacks.append(_freeze_survivors)


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


@main.command("vendors")
def list_vendors() -> None:
    """List the vendors this build emulates."""
    for vendor in discover():
        click.echo(f"{vendor.name}\t{vendor.base_path}")


@main.command()
@click.option("--vendor", "vendor_name", required=True, metavar="NAME", help="Whose spec to check against.")
@click.option("--base-url", required=True, help="The API's base URL, e.g. http://127.0.0.1:8080/karmabot/api/v1.")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="Send this header (credentials) with every request (repeatable).")
@click.option("--max-examples", default=25, show_default=True, type=click.IntRange(1))
@click.option("--seed", type=int, help="Random cases, the same for the same seed. Default: the same cases every run.")
@click.option("--rate-limit", metavar="N/UNIT", help="At most this many requests, e.g. 6/m (a real vendor's limit).")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write a JUnit XML report here.")
@click.option("--phases", default=",".join(FUZZ_PHASES), show_default=True, metavar="LIST",
              help="The phases to run, comma-separated: positive (every documented operation once with valid "
                   "data found through the API, each required to reach its documented success), then "
                   "Schemathesis' examples, coverage, fuzzing and stateful.")
@click.option("--positive/--no-positive", "with_positive", default=True, show_default=True,
              help="--no-positive: leave the positive phase out (as --phases without it).")
def fuzz(vendor_name: str, base_url: str, headers: tuple[str, ...], max_examples: int, seed: int | None,
         rate_limit: str | None, junit: str | None, phases: str, with_positive: bool) -> None:
    """Check any server (the vendor, a proxy, this mock) against our spec; non-zero on a violation."""
    if importlib.util.find_spec("schemathesis") is None:
        raise click.UsageError("checking a server needs the fuzz extra: pip install 'mockserver[fuzz]'")
    from mockserver import fuzz as fuzzing
    from mockserver import replay as replaying

    if rate_limit and not re.fullmatch(r"[1-9][0-9]*/[smhd]", rate_limit):
        raise click.BadParameter(f"{rate_limit!r} is not N/UNIT (UNIT one of s, m, h, d)", param_hint="--rate-limit")
    chosen = [phase.strip() for phase in phases.split(",") if phase.strip()]
    unknown = [phase for phase in chosen if phase not in FUZZ_PHASES]
    if unknown or not chosen:
        raise click.BadParameter(f"{phases!r}: choose among {', '.join(FUZZ_PHASES)}", param_hint="--phases")
    if not with_positive:
        chosen = [phase for phase in chosen if phase != "positive"]

    vendor, sent, base_url = _vendor(vendor_name), _headers(headers), base_url.rstrip("/")
    try:
        replaying.check_reachable(base_url)
    except replaying.Unreachable as exc:
        raise Unreachable(str(exc)) from None
    raise SystemExit(fuzzing.run_cli(vendor, base_url, sent, max_examples=max_examples, seed=seed,
                                     junit=junit, rate_limit=rate_limit, phases=chosen))


@main.command()
@click.option("--vendor", "vendor_name", required=True, metavar="NAME", help="Whose spec to check against.")
@click.option("--upstream", required=True, metavar="URL",
              help="The vendor's base URL, e.g. https://app.karmabot.chat/api/v1.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=click.IntRange(0, 65535))
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write the report here at exit: JSON if it ends in .json, JUnit if .xml, else text.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), help="Also write a JUnit report here at exit.")
@click.option("--record", type=click.Path(file_okay=False), help="Save every exchange here (secrets replaced), "
              "for `mockserver replay`.")
@click.option("--fail-on", type=click.Choice(["never", "drift"]), default="never", show_default=True,
              help="drift: exit 1 if anything did not match the spec.")
def proxy(vendor_name: str, upstream: str, host: str, port: int, report_path: str | None, junit_path: str | None,
          record: str | None, fail_on: str) -> None:
    """Forward a client's requests to the real vendor, checking both directions against our spec."""
    from mockserver import proxy as proxying

    vendor = _vendor(vendor_name)
    listening, root = _listen(host, port)
    raise SystemExit(proxying.serve(vendor, upstream, listening, root, record=record, report_path=report_path,
                                    junit_path=junit_path, fail_on=fail_on, announce=click.echo))


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--base-url", required=True, help="Where to send them, e.g. http://127.0.0.1:8080/karmabot/api/v1.")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="Send this header (credentials: the recording holds none) with every request (repeatable).")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write a JUnit XML report here.")
def replay(folder: str, base_url: str, headers: tuple[str, ...], junit: str | None) -> None:
    """Send exchanges recorded by `mockserver proxy --record` again; non-zero if an answer's shape differs."""
    from mockserver import replay as replaying

    try:
        outcomes = replaying.replay(folder, base_url.rstrip("/"), _headers(headers))
    except replaying.Unreachable as exc:
        raise Unreachable(str(exc)) from None
    click.echo(replaying.report(outcomes))
    if junit:
        try:
            replaying.junit(outcomes).write(junit, encoding="utf-8", xml_declaration=True)
        except OSError as exc:
            raise click.FileError(junit, exc.strerror or str(exc)) from None
    raise SystemExit(1 if any(outcome.differences for outcome in outcomes) else 0)


@main.command("coverage")
@click.option("--base-url", required=True, help="The mockserver's URL, e.g. http://127.0.0.1:8080.")
@click.option("--tenant", help="One tenant's requests (default: every tenant's, and those that named none).")
@click.option("--vendor", "vendor_name", metavar="NAME", help="One vendor's operations (default: every vendor's).")
@click.option("--format", "output", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True)
@click.option("--fail-under", type=click.FloatRange(0, 100), metavar="PERCENT",
              help="Exit 1 when fewer documented operations were exercised (of the vendors called at all).")
@click.option("--admin-token", envvar=ADMIN_TOKEN_VARIABLE, metavar="TOKEN", help="The server's admin token, if it has one.")
def api_coverage(base_url: str, tenant: str | None, vendor_name: str | None, output: str, fail_under: float | None,
                 admin_token: str | None) -> None:
    """Which documented operations and statuses a running mockserver's requests exercised."""
    import httpx

    from mockserver import coverage
    from mockserver.testing import MockserverError, connect

    try:
        server = connect(base_url, admin_token)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {base_url}: {exc}") from None
    try:
        report = server.coverage(tenant, vendor_name)
    except MockserverError as exc:
        raise click.ClickException(f"{base_url} answered {exc.status}: {exc.message}") from None
    finally:
        server.close()
    click.echo({"text": lambda: coverage.text(report, detail=True), "json": lambda: json.dumps(report, indent=2),
                "junit": lambda: coverage.junit(report)}[output]())
    exercised = coverage.exercised_percent(report)
    if fail_under is not None and exercised < fail_under:
        click.echo(f"{exercised:.1f}% of documented operations exercised, under --fail-under {fail_under:g}", err=True)
        raise SystemExit(1)


def _listen(host: str, port: int, reuse_port: bool = False) -> tuple[socket.socket, str]:
    """The bound socket and the URL to reach it (the real port, for --port 0). Bound before any
    banner: a port in use is an error, not a success banner and then one."""
    try:
        listening = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                         reuse_port=reuse_port)
    except OSError as exc:
        raise click.BadParameter(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                                 param_hint="--port") from None
    # Every address: shown as this machine's loopback of the same family (`::` serves IPv6 alone).
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host) or (f"[{host}]" if ":" in host else host)
    return listening, f"http://{shown}:{listening.getsockname()[1]}"


class Unreachable(click.ClickException):
    """Nothing answers at --base-url: one line, and the exit status of a usage error (nothing was checked)."""

    exit_code = 2


def _vendor(name: str) -> Vendor:
    try:
        return discover([name])[0]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--vendor") from None


def _headers(headers: Iterable[str]) -> dict[str, str]:
    sent = {}
    for header in headers:
        name, colon, value = header.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not HEADER_NAME.fullmatch(name) or not HEADER_VALUE.fullmatch(value):
            raise click.BadParameter(f"{header!r} is not 'NAME: VALUE' (a header name, then printable latin-1)",
                                     param_hint="--header")
        sent[name] = value
    return sent
