"""When a file dropped in a folder is complete: renamed from ``.part``, or unchanged N seconds.

A program writing into the outbox folder either writes to ``name.part`` (ignored
here) and renames it when done, or writes in place. ``Stability`` remembers each
file's size and modification time from one look to the next; a file is complete
once neither changed for ``stable_seconds`` (at once when it is 0, for the
rename convention). Pure bookkeeping: the caller lists the folder and gives the clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


class Stability:
    def __init__(self, stable_seconds: float) -> None:
        self.stable_seconds = stable_seconds
        self._seen: dict[str, _Seen] = {}

    def complete(self, listing: dict[str, tuple[int, int]], now: float) -> set[str]:
        """The names of ``listing`` (name → size, mtime) unchanged for long enough."""
        for name in list(self._seen):
            if name not in listing:
                del self._seen[name]
        done = set()
        for name, (size, mtime_ns) in listing.items():
            seen = self._seen.get(name)
            if seen is None or (seen.size, seen.mtime_ns) != (size, mtime_ns):
                seen = self._seen[name] = _Seen(size, mtime_ns, now)
            if now - seen.since >= self.stable_seconds:
                done.add(name)
        return done

    def age(self, name: str, now: float) -> float:
        """Seconds since ``name`` last changed (0 when not seen)."""
        seen = self._seen.get(name)
        return now - seen.since if seen is not None else 0.0

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)
