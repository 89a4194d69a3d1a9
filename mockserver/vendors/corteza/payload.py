"""Request values read as Corteza's Go request parsers read them (pkg/payload/util.go)."""

import re

TRUTHY = re.compile(r"\s*(t(rue)?|y(es)?|1)\s*")



def parse_bool(text: str | None) -> bool:
    """pkg/payload ParseBool: t, true, y, yes or 1 in any case; anything else is false."""
    return text is not None and TRUTHY.fullmatch(text.lower()) is not None



def parse_uint64(text: str) -> int:
    """pkg/payload ParseUint64: a uint64 in decimal, or 0 for anything else."""
    return int(text) if text.isascii() and text.isdigit() and int(text) < 2**64 else 0
