"""The measured figures of one benchmark run, as plain data for the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from timing import Settings

__all__ = [
    "LatencyRow",
    "MemoryRow",
    "Results",
    "Row",
    "Series",
    "ServerTimeRow",
]


@dataclass(frozen=True)
class Row:
    """One operation timed on redis-memory, raw redis-py and pottery.

    Times are seconds per operation; None means the contender was not run.
    The target, when there is one, is a minimum of ``ratio``: raw seconds
    divided by our seconds, which is our rate divided by the raw rate.
    """

    section: str
    operation: str
    ours: float | None
    raw: float | None
    pottery: float | None = None
    min_ratio: float | None = None
    target: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Our rate divided by the raw rate."""
        if self.ours is None or self.raw is None:
            return None
        return self.raw / self.ours

    @property
    def pottery_ratio(self) -> float | None:
        """pottery's rate divided by the raw rate."""
        if self.pottery is None or self.raw is None:
            return None
        return self.raw / self.pottery

    @property
    def met(self) -> bool | None:
        """Whether the target is met; None without a target or a measurement."""
        ratio = self.ratio
        if self.min_ratio is None or ratio is None:
            return None
        return ratio >= self.min_ratio


@dataclass(frozen=True)
class Series:
    """Seconds per operation of one operation at each collection size."""

    operation: str
    sizes: tuple[int, ...]
    ours: tuple[float, ...]
    raw: tuple[float, ...]
    pottery: tuple[float, ...]

    @property
    def spread(self) -> float:
        """Our slowest size's cost divided by our fastest size's cost."""
        return max(self.ours) / min(self.ours)


@dataclass(frozen=True)
class ServerTimeRow:
    """Server-side cost of one operation, from ``INFO commandstats``.

    Attributes
    ----------
    operation : str
        As in `Series.operation`.
    ours_us : float
        Microseconds of FCALL and EVALSHA per operation.
    ours_commands : float
        Commands that the scripts ran per operation.
    raw_us : float
        Microseconds of the raw command per operation.
    ours_total_us, raw_total_us : float
        Microseconds per operation seen by the client in the same pass.
    """

    operation: str
    ours_us: float
    ours_commands: float
    raw_us: float
    ours_total_us: float
    raw_total_us: float


@dataclass(frozen=True)
class MemoryRow:
    """Bytes per stored scalar (``MEMORY USAGE``) in our keys and in plain keys."""

    structure: str
    scalars: int
    ours_bytes: int
    plain_bytes: int
    max_ratio: float = 2.0

    @property
    def ratio(self) -> float:
        """Our bytes divided by the plain keys' bytes."""
        return self.ours_bytes / self.plain_bytes

    @property
    def met(self) -> bool:
        """Whether the ratio is within ``max_ratio``."""
        return self.ratio <= self.max_ratio


@dataclass(frozen=True)
class LatencyRow:
    """A one-off cost or a delay in seconds, against a limit."""

    what: str
    seconds: float | None
    limit: float | None
    note: str = ""

    @property
    def met(self) -> bool | None:
        """Whether ``seconds`` is under ``limit``; None without both."""
        if self.seconds is None or self.limit is None:
            return None
        return self.seconds < self.limit


@dataclass
class Results:
    """Everything one run measured, plus where and how."""

    command: str
    quick: bool
    environment: dict[str, str]
    settings: Settings
    main_size: int
    rows: list[Row] = field(default_factory=list)
    scaling: list[Series] = field(default_factory=list)
    server_time: list[ServerTimeRow] = field(default_factory=list)
    memory: list[MemoryRow] = field(default_factory=list)
    startup: list[LatencyRow] = field(default_factory=list)
    coherence: list[LatencyRow] = field(default_factory=list)
    round_trips: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0
