"""Schemathesis over every vendor's spec, in process against the ASGI app, every check on:
per-operation fuzzing, and stateful runs along the specs' OpenAPI links (create, then read,
update, delete).

A fixed seed and a bounded budget keep the run repeatable; MOCKSERVER_FUZZ_EXAMPLES=N runs deeper.
Rate limits are lifted for the fuzzing tenant (their 429s have deterministic tests of their own).
"""

import os

import hypothesis
import schemathesis

from mockserver import MockServer, fuzz, positive

EXAMPLES = int(os.environ.get("MOCKSERVER_FUZZ_EXAMPLES", "25"))
APP = MockServer(ticking=False)
TENANT = APP.store.create("fuzzing", rate_limits=False)
CREDENTIALS = TENANT.credentials()


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

    def test_positive():
        """Every documented operation reaches its documented success, with valid data found
        through the API along the spec's links, and each answer matches the spec."""
        TENANT.reset()
        APP.store.index(TENANT)
        steps = fuzz.positive_phase(vendor, schema, CREDENTIALS[vendor.name]["headers"])
        assert len(steps) == len(vendor.operations)
        assert not [step for step in steps if step.problems], positive.report(steps)

    return test, test_stateful, test_positive


for _vendor in APP.vendors:
    (globals()[f"test_fuzz_{_vendor.name}"], globals()[f"test_stateful_{_vendor.name}"],
     globals()[f"test_positive_{_vendor.name}"]) = fuzz_vendor(_vendor)
