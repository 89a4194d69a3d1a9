"""Page-numbered lists (page 1 first), as several vendors page them."""

from typing import Any


def page_of(items: list[Any], page: int, size: int) -> tuple[list[Any], bool]:
    """Items on that page, and whether any come after it."""
    start = (page - 1) * size
    return items[start:start + size], len(items) > start + size
