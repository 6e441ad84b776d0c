"""Per-connection vsql settings: ``SET hnsw.ef_search = 100``, ``SET LOCAL``, ``RESET`` and ``SHOW``.

Settings in the namespaces ``hnsw``, ``ivfflat``, ``ivfpq`` and ``vsql`` belong to vsql; every other
SET reaches DuckDB unchanged. ``SET LOCAL`` lasts until the end of the current transaction, as in
PostgreSQL; outside a transaction it has no effect and logs a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vsql.errors import ProgrammingError

log = logging.getLogger("vsql")


@dataclass(frozen=True)
class Setting:
    name: str
    default: int | bool
    minimum: int | None = None
    maximum: int | None = None
    description: str = ""

    def parse(self, value: object) -> int | bool:
        """Return ``value`` converted to this setting's type, or raise with the valid range."""
        if isinstance(self.default, bool):
            return _parse_bool(self.name, value)
        try:
            number = int(str(value).strip("'\""))
        except ValueError:
            raise ProgrammingError(
                f'invalid value for parameter "{self.name}": "{value}"; expected an integer '
                f"between {self.minimum} and {self.maximum}"
            ) from None
        if not self.minimum <= number <= self.maximum:  # type: ignore[operator]
            raise ProgrammingError(
                f'{number} is outside the valid range for parameter "{self.name}" ({self.minimum} .. {self.maximum})'
            )
        return number


def _parse_bool(name: str, value: object) -> bool:
    text = str(value).strip("'\"").lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise ProgrammingError(f'parameter "{name}" requires a Boolean value (on or off), not "{value}"')


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        # 80 rather than pgvector's 40: on the 100,000 MiniLM embeddings of the benchmark (1,000
        # queries), recall@10 is 0.91 at 40, 0.94 at 64 and 0.955 at 80, and a search at 80 takes
        # about 0.15 ms on one core.
        Setting("hnsw.ef_search", 80, 1, 1000, "candidate list size of an HNSW search"),
        Setting("ivfflat.probes", 1, 1, 32768, "inverted lists an IVF-Flat search scans"),
        Setting("ivfpq.probes", 8, 1, 32768, "inverted lists an IVF-PQ search scans"),
        Setting("ivfpq.rerank", 200, 0, 100000, "PQ candidates re-ranked by exact distance"),
        Setting("vsql.enable_index_scan", True, description="use vector indexes for kNN queries"),
    )
}


def lookup(name: str) -> Setting:
    """Return the setting called ``name`` or raise, listing the known settings."""
    setting = SETTINGS.get(name.lower())
    if setting is None:
        known = ", ".join(sorted(SETTINGS))
        raise ProgrammingError(f'unrecognized configuration parameter "{name}"; vsql parameters are {known}')
    return setting


class Settings:
    """The values of vsql's settings on one connection, with SET LOCAL overrides."""

    def __init__(self) -> None:
        self._session: dict[str, int | bool] = {}
        self._local: dict[str, int | bool] = {}
        # Bumped on every change, so plans cached with older values are not reused.
        self.version = 0

    def get(self, name: str) -> int | bool:
        setting = lookup(name)
        if setting.name in self._local:
            return self._local[setting.name]
        return self._session.get(setting.name, setting.default)

    def set(self, name: str, value: object, *, local: bool = False, in_transaction: bool = True) -> None:
        setting = lookup(name)
        parsed = setting.parse(value)
        if local and not in_transaction:
            log.warning("SET LOCAL %s can only be used in transaction blocks; it has no effect", name)
            return
        (self._local if local else self._session)[setting.name] = parsed
        self.version += 1

    def reset(self, name: str | None = None) -> None:
        if name is None:
            self._session.clear()
            self._local.clear()
        else:
            setting = lookup(name)
            self._session.pop(setting.name, None)
            self._local.pop(setting.name, None)
        self.version += 1

    def end_transaction(self) -> None:
        """Drop SET LOCAL values: called on COMMIT and ROLLBACK."""
        if self._local:
            self._local.clear()
            self.version += 1

    def show(self, name: str) -> str:
        value = self.get(name)
        if isinstance(value, bool):
            return "on" if value else "off"
        return str(value)
