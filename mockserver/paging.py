"""Page-numbered lists (page 1 first), as several vendors page them."""


def page_of(items: list, page: int, size: int) -> tuple[list, bool]:
    """Items on that page, and whether any come after it."""
    start = (page - 1) * size
    return items[start:start + size], len(items) > start + size
