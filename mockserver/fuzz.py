"""Contract fuzzing with Schemathesis, configured from a vendor's spec.

The same configuration drives the test suite (in process, against the ASGI app) and is meant for
users checking any server against our spec.
"""

import base64
import binascii
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import jsonschema
import schemathesis
import tomli_w
from schemathesis import BaseSchema, Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, unsupported_method

from mockserver import positive, upstream_schemathesis
from mockserver.errors import ERROR_STATUS_HEADER
from mockserver.vendor import Vendor, data_dir, resolve_ref


def auth_entries(vendor: Vendor, headers: dict[str, str]) -> dict[str, Any]:
    """Schemathesis `auth.openapi` entries for the vendor's security schemes, from ready-to-send headers."""
    sent = {name.lower(): value for name, value in headers.items()}
    entries = {}
    for name, scheme in vendor.spec.get("components", {}).get("securitySchemes", {}).items():
        if scheme["type"] == "apiKey" and scheme["in"] == "header" and scheme["name"].lower() in sent:
            entries[name] = {"api_key": sent[scheme["name"].lower()]}
        elif scheme["type"] == "http" and "authorization" in sent:
            kind, _, value = sent["authorization"].partition(" ")
            if kind.lower() == "bearer" == scheme["scheme"].lower():
                entries[name] = {"bearer": value}
            elif kind.lower() == "basic" == scheme["scheme"].lower():
                try:
                    username, _, password = base64.b64decode(value).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    continue
                entries[name] = {"username": username, "password": password}
    return entries


def config(vendor: Vendor, headers: dict[str, str], **options: Any) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(config_data(vendor, headers, **options))


def config_data(vendor: Vendor, headers: dict[str, str], *, max_examples: int = 25, seed: int | None = None,
                base_url: str | None = None) -> dict[str, Any]:
    """Schemathesis configuration (as its TOML would hold it): every check on, a fixed seed and
    budget, and the vendor's documented exceptions.

    Operations may declare `x-semantic-errors`: statuses they document for schema-valid input
    refused by a business rule (Dailybot's empty receivers list is a 400); the positive-data check
    accepts those there and nowhere else. Unknown query parameters are not generated: the vendors
    (and we) ignore them, and the spec cannot say so.
    """
    operations = []
    for op_id, operation in vendor.operations.items():
        # `x-fuzz-skip`: checks the vendor's own behaviour contradicts on this operation (its reason in the spec)
        own: dict[str, dict[str, Any]] = {name: {"enabled": False}
                                          for name in operation.extensions.get("x-fuzz-skip", [])}
        if statuses := operation.extensions.get("x-semantic-errors"):
            own["positive_data_acceptance"] = {"expected-statuses": [
                *upstream_schemathesis.POSITIVE_EXPECTED_STATUSES, *map(str, statuses)]}
        if own:
            operations.append({"include-operation-id": op_id, "checks": own})
    # Bodies over the size limit are refused with 413 and query strings over it with 414 (see
    # README, Security), refusals Schemathesis does not list.
    checks: dict[str, dict[str, Any]] = {"negative_data_rejection": {"expected-statuses": [
        *upstream_schemathesis.NEGATIVE_EXPECTED_STATUSES, "413", "414"]}}
    if "x-error-status" in vendor.spec:
        # This vendor answers errors with another status (Corteza: always 200), so the checks that
        # judge refusals by status cannot see them; `checks_for` runs them on the status the error
        # stands for, and the tests call every secured operation without credentials instead of
        # `ignored_auth` (which makes requests of its own).
        for name in ("negative_data_rejection", "unsupported_method", "ignored_auth"):
            checks.setdefault(name, {})["enabled"] = False
    # No seed: Hypothesis' deterministic mode (the same cases every run). A seed: random cases,
    # the same ones for the same seed. Never a database of examples in the working directory.
    generation = {"max-examples": max_examples, "deterministic": seed is None, "allow-extra-parameters": False,
                  "database": "none"}
    data = {"checks": checks, "generation": generation, "operations": operations}
    if seed is not None:
        data["seed"] = seed
    if entries := auth_entries(vendor, headers):
        data["auth"] = {"openapi": entries}
    if base_url:
        data["base-url"] = base_url
    return data


def error_status_of(vendor: Vendor) -> Callable[[Response], int | None]:
    """For a vendor whose errors carry no error status (spec root `x-error-status`): a function
    giving the status a Schemathesis response stands for if it is an error (our
    `X-Mockserver-Error-Status` header, or 400 for any body in the vendor's `x-error-schema`), else None."""
    validator = jsonschema.Draft4Validator(vendor.error_schema)

    def error_status(response: Response) -> int | None:
        status = response.headers.get(ERROR_STATUS_HEADER.lower())
        if status:
            return int(status[0])
        try:
            return 400 if validator.is_valid(json.loads(response.content)) else None
        except ValueError:
            return None

    return error_status


def status_of(vendor: Vendor) -> Callable[[Response], int]:
    """The status a Schemathesis response stands for, this vendor's hidden error statuses included."""
    if "x-error-status" not in vendor.spec:
        return lambda response: response.status_code
    error_status = error_status_of(vendor)
    return lambda response: error_status(response) or response.status_code


def checks_for(vendor: Vendor) -> list[Any]:
    """For vendors whose errors carry no error status (spec root `x-error-status`, `x-error-schema`):
    Schemathesis' server-error, negative-data and undeclared-method checks, run on the status the
    error stands for: our `X-Mockserver-Error-Status` header, or 400 for any body in the vendor's error schema
    (a real server sends no such header). An operation's `x-fuzz-skip` names checks that do not
    apply to it, each with its reason in the spec."""
    if "x-error-status" not in vendor.spec:
        return []
    error_status = error_status_of(vendor)

    def as_status(response: Response) -> Response:
        status = error_status(response)
        if status is None:
            return response
        seen = copy.copy(response)
        seen.status_code = status
        return seen

    def no_server_error(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
        return not_a_server_error(ctx, as_status(response), case)

    def negative_data_rejected(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
        # In the stateful phase a link's values may turn a negative case valid, and Schemathesis
        # still judges it negative (schemathesis/schemathesis#2983, open).
        if case.meta is not None and case.meta.phase.name.value == "stateful":
            return None
        if _valid_as_a_form(vendor, case):
            return None
        return negative_data_rejection(ctx, as_status(response), case)

    def undeclared_method_refused(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
        if "unsupported_method" in case.operation.definition.raw.get("x-fuzz-skip", ()):
            return None
        return unsupported_method(ctx, as_status(response), case)

    return [no_server_error, negative_data_rejected, undeclared_method_refused]


def _valid_as_a_form(vendor: Vendor, case: Case[Any]) -> bool:
    """Whether a "negative" form body is one the schema allows once read as a form is read: every
    value is text (`a=true` is "true") and a single `a=x` is the one-element array `a=[x]` (Go's
    Request.Form, Connexion alike). Schemathesis sends a scalar generated against an array so, and
    then expects it refused."""
    meta = case.meta
    if meta is None or "form" not in (case.media_type or "") or not isinstance(case.body, dict):
        return False
    negative = {location for location, info in meta.components.items() if info.mode == GenerationMode.NEGATIVE}
    if negative != {ParameterLocation.BODY}:
        return False
    raw = case.operation.definition.raw
    declared = resolve_ref(vendor.spec, raw.get("requestBody", {})).get("content", {}).get(case.media_type, {})
    schema = declared.get("schema", {})
    properties = resolve_ref(vendor.spec, schema).get("properties", {})
    as_read = {}
    for name, value in case.body.items():
        if value is None:  # not sent at all
            continue
        text = [_form_text(item) for item in value] if isinstance(value, list) else _form_text(value)
        is_array = resolve_ref(vendor.spec, properties.get(name, {})).get("type") == "array"
        as_read[name] = [text] if is_array and not isinstance(text, list) else text
    # the spec's components beside the schema, so its $refs resolve against this document
    return as_read != case.body and jsonschema.Draft4Validator(
        {**schema, "components": vendor.spec.get("components", {})}).is_valid(as_read)


def _form_text(value: object) -> object:
    """A value as it travels in a form: text (objects cannot, and stay as they are)."""
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return value


def positive_phase(vendor: Vendor, schema: BaseSchema, headers: dict[str, str],
                   rate_limit: str | None = None) -> list[positive.Step]:
    """`positive.Phase` over a loaded Schemathesis schema: every operation once with valid data."""
    interval = 0.0
    if rate_limit:
        count, _, unit = rate_limit.partition("/")
        interval = _UNIT_SECONDS[unit[:1]] / int(count)
    return positive.Phase(vendor, schema, headers, status_of=status_of(vendor), interval=interval).run()


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def run_cli(vendor: Vendor, base_url: str, headers: dict[str, str], *, max_examples: int, seed: int | None,
            phases: Sequence[str], junit: str | None = None, rate_limit: str | None = None) -> int:
    """The positive phase, then Schemathesis' own CLI with this configuration for its phases among
    `phases`, against any server; non-zero if either found a problem. Schemathesis runs in a
    scratch folder, so nothing of it is left in the user's (the JUnit report aside)."""
    if junit and os.path.isfile(junit):
        os.remove(junit)  # an earlier run's report: the positive suite is added to this run's alone
    steps = []
    started = time.monotonic()
    if "positive" in phases:
        schema = schemathesis.openapi.from_path(data_dir("specs") / f"{vendor.name}.yaml",
                                                config=config(vendor, headers, base_url=base_url))
        steps = positive_phase(vendor, schema, headers, rate_limit)
        print(positive.report(steps), flush=True)
    seconds = time.monotonic() - started
    theirs = [phase for phase in phases if phase != "positive"]
    status = _schemathesis_cli(vendor, base_url, headers, max_examples=max_examples, seed=seed, junit=junit,
                               rate_limit=rate_limit, phases=theirs) if theirs else 0
    if junit and steps:
        positive.add_to_junit(junit, steps, seconds)
    return status or int(any(step.problems for step in steps))


def _schemathesis_cli(vendor: Vendor, base_url: str, headers: dict[str, str], *, max_examples: int,
                      seed: int | None, junit: str | None, rate_limit: str | None, phases: list[str]) -> int:
    with tempfile.TemporaryDirectory() as folder:
        config_file = os.path.join(folder, "schemathesis.toml")
        with open(config_file, "wb") as handle:
            tomli_w.dump(config_data(vendor, headers, max_examples=max_examples, seed=seed), handle)
        command = [sys.executable, "-m", "schemathesis.cli", "--config-file", config_file, "run",
                   str(data_dir("specs") / f"{vendor.name}.yaml"), "--url", base_url, "--phases", ",".join(phases)]
        if not auth_entries(vendor, headers):  # credentials no scheme of this spec names: send as they are
            command += [arg for name, value in headers.items() for arg in ("--header", f"{name}: {value}")]
        if junit:
            command += ["--report", "junit", "--report-junit-path", os.path.abspath(junit)]
        if rate_limit:
            command += ["--rate-limit", rate_limit]
        environment = os.environ | {"SCHEMATHESIS_HOOKS": "mockserver.fuzz_hooks",
                                    "MOCKSERVER_FUZZ_VENDOR": vendor.name}
        return subprocess.run(command, env=environment, cwd=folder).returncode
