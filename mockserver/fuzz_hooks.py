"""Loaded by Schemathesis (SCHEMATHESIS_HOOKS) during `mockserver fuzz`: registers the extra
checks of the vendor named in MOCKSERVER_FUZZ_VENDOR (see `fuzz.checks_for`)."""

import os

import schemathesis

from mockserver.fuzz import checks_for
from mockserver.vendor import discover

for _check in checks_for(discover([os.environ["MOCKSERVER_FUZZ_VENDOR"]])[0]):
    schemathesis.check(_check)
