"""Schemathesis over every vendor's spec, in process against the ASGI app, every check on.

A fixed seed and a bounded budget keep the run repeatable; MOCKSERVER_FUZZ_EXAMPLES=N runs deeper.
Rate limits are lifted for the fuzzing tenant (their 429s have deterministic tests of their own).
"""

import os

import schemathesis

from mockserver import MockServer, fuzz

EXAMPLES = int(os.environ.get("MOCKSERVER_FUZZ_EXAMPLES", "25"))
APP = MockServer(ticking=False)
CREDENTIALS = APP.store.create("fuzzing", rate_limits=False).credentials()


def fuzz_vendor(vendor):
    config = fuzz.config(vendor, CREDENTIALS[vendor.name]["headers"], max_examples=EXAMPLES)
    schema = schemathesis.openapi.from_asgi(f"{vendor.base_path}/openapi.json", APP, config=config)

    extra_checks = fuzz.checks_for(vendor)

    @schema.parametrize()
    def test(case):
        case.call_and_validate(additional_checks=extra_checks)

    return test


for _vendor in APP.vendors:
    globals()[f"test_fuzz_{_vendor.name}"] = fuzz_vendor(_vendor)
