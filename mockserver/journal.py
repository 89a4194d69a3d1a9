"""The request journal: what clients sent and what they got, newest last, bounded."""

from collections import deque


class Journal:
    def __init__(self, limit: int = 1000):
        self.entries: deque[dict] = deque(maxlen=limit)  # past the limit the oldest drop out

    def record(self, entry: dict) -> None:
        self.entries.append(entry)

    def query(self, tenant: str | None = None, vendor: str | None = None) -> list[dict]:
        return [
            entry for entry in self.entries
            if (tenant is None or entry["tenant"] == tenant) and (vendor is None or entry["vendor"] == vendor)
        ]

    def clear(self) -> None:
        self.entries.clear()
