"""The request journal: what clients sent and what they got, newest last, bounded."""

from collections import deque


class Journal:
    def __init__(self, limit: int = 1000):
        self.entries: deque[dict] = deque(maxlen=limit)  # past the limit the oldest drop out
        self.cleared = False  # since the last turn shared the journal (see turns.RedisTurns)

    def record(self, entry: dict) -> None:
        self.entries.append(entry)

    def find(self, pattern: dict) -> list[dict]:
        """Entries matching every field of `pattern` (WireMock-style verification); `body` matches
        when the recorded body holds it (a dict matches any superset, recursively)."""
        return [entry for entry in self.entries if all(
            _holds(entry.get(key), value) if key == "body" else entry.get(key) == value
            for key, value in pattern.items())]

    def clear(self) -> None:
        self.entries.clear()
        self.cleared = True


def _holds(recorded, wanted) -> bool:
    if isinstance(wanted, dict):
        return isinstance(recorded, dict) and all(key in recorded and _holds(recorded[key], value)
                                                  for key, value in wanted.items())
    return recorded == wanted
