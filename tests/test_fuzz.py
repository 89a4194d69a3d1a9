"""Schemathesis over every vendor's spec, in process against the ASGI app, every check on:
per-operation fuzzing, and stateful runs along the specs' OpenAPI links (create, then read,
update, delete).

A fixed seed and a bounded budget keep the run repeatable; MOCKSERVER_FUZZ_EXAMPLES=N runs deeper.
Rate limits are lifted for the fuzzing tenant (their 429s have deterministic tests of their own).
"""

import os

import hypothesis
import schemathesis

from mockserver import MockServer, fuzz

EXAMPLES = int(os.environ.get("MOCKSERVER_FUZZ_EXAMPLES", "25"))
APP = MockServer(ticking=False)
TENANT = APP.store.create("fuzzing", rate_limits=False)
CREDENTIALS = TENANT.credentials()


def has_links(vendor) -> bool:
    return any("links" in response for item in vendor.spec["paths"].values() for operation in item.values()
               if isinstance(operation, dict) for response in operation.get("responses", {}).values())


def fuzz_vendor(vendor):
    config = fuzz.config(vendor, CREDENTIALS[vendor.name]["headers"], max_examples=EXAMPLES)
    schema = schemathesis.openapi.from_asgi(f"{vendor.base_path}/openapi.json", APP, config=config)
    extra_checks = fuzz.checks_for(vendor)

    @schema.parametrize()
    def test(case):
        case.call_and_validate(additional_checks=extra_checks)

    class Machine(schema.as_state_machine()):
        def setup(self):
            # Every scenario starts from the seeded state, so Hypothesis can replay (and shrink) it.
            TENANT.reset()
            APP.store.index(TENANT)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            super().validate_response(response, case, additional_checks=[*(additional_checks or []), *extra_checks],
                                      **kwargs)

    def test_stateful():
        Machine.run(settings=hypothesis.settings(
            max_examples=EXAMPLES, stateful_step_count=6, deadline=None, derandomize=True, database=None,
            suppress_health_check=list(hypothesis.HealthCheck)))

    # Karma bot has no links: a plus cannot be read back, so there is no create-then-use chain.
    return test, (test_stateful if has_links(vendor) else None)


for _vendor in APP.vendors:
    globals()[f"test_fuzz_{_vendor.name}"], _stateful = fuzz_vendor(_vendor)
    if _stateful:
        globals()[f"test_stateful_{_vendor.name}"] = _stateful
