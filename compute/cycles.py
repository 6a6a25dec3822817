"""The review-cycle calendar: pure date math, no database.

A cycle covers Monday 00:00 to the end of the Sunday after next, in the site's time zone; ``end`` is the
exclusive bound (the Monday two weeks later, 00:00). Cycles are counted from a fixed anchor Monday so every
process agrees where a cycle starts without asking the database.

Boundaries are built from local *calendar dates* and then localised, never by adding a ``timedelta`` to an
aware datetime: a cycle containing a daylight-saving switch therefore still starts and ends at local
midnight, and is 335 or 337 hours long. Durations are measured in UTC because Python subtracts two aware
datetimes sharing one ``tzinfo`` as naive wall-clock times.

Phase schedule of a cycle starting at S (``review_days`` is a setting):

    open       from S - 14 days (when the previous cycle starts): requests accepted
    in_review  from S - review_days: requests frozen, reviewers decide
    published  from S: grants in force, usage charged
    closed     from the cycle's end
"""
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models

CYCLE_DAYS = 14


class Phase(models.TextChoices):
    OPEN = "open", "Open for requests"
    IN_REVIEW = "in_review", "In review"
    PUBLISHED = "published", "Published"
    CLOSED = "closed", "Closed"


PHASE_ORDER: tuple[str, ...] = (Phase.OPEN, Phase.IN_REVIEW, Phase.PUBLISHED, Phase.CLOSED)


def phase_index(phase: str) -> int:
    return PHASE_ORDER.index(phase)


@dataclass(frozen=True)
class CycleWindow:
    start: datetime
    end: datetime

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The Sunday after next: the last calendar day inside the cycle."""
        return self.end.date() - timedelta(days=1)

    @property
    def hours(self) -> Decimal:
        seconds = (self.end.astimezone(UTC) - self.start.astimezone(UTC)).total_seconds()
        return Decimal(int(seconds)) / Decimal(3600)

    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=offset) for offset in range(CYCLE_DAYS)]


@dataclass(frozen=True)
class Calendar:
    tz: ZoneInfo
    anchor: date
    review_days: int

    @classmethod
    def from_settings(cls) -> "Calendar":
        return cls(
            tz=ZoneInfo(settings.TIME_ZONE),
            anchor=date.fromisoformat(settings.FLIGHTDECK_COMPUTE_CYCLE_ANCHOR),
            review_days=settings.FLIGHTDECK_COMPUTE_REVIEW_DAYS,
        )

    def midnight(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.tz)

    def window_starting(self, first_day: date) -> CycleWindow:
        if (first_day - self.anchor).days % CYCLE_DAYS:
            raise ValueError(f"{first_day} is not a cycle start; cycles start every {CYCLE_DAYS} days from {self.anchor}")
        return CycleWindow(self.midnight(first_day), self.midnight(first_day + timedelta(days=CYCLE_DAYS)))

    def window_containing(self, moment: datetime) -> CycleWindow:
        local_day = moment.astimezone(self.tz).date()
        offset = (local_day - self.anchor).days % CYCLE_DAYS
        return self.window_starting(local_day - timedelta(days=offset))

    def window_after(self, window: CycleWindow) -> CycleWindow:
        return self.window_starting(window.first_day + timedelta(days=CYCLE_DAYS))

    def window_before(self, window: CycleWindow) -> CycleWindow:
        return self.window_starting(window.first_day - timedelta(days=CYCLE_DAYS))

    def opens_at(self, window: CycleWindow) -> datetime:
        return self.midnight(window.first_day - timedelta(days=CYCLE_DAYS))

    def review_starts_at(self, window: CycleWindow) -> datetime:
        return self.midnight(window.first_day - timedelta(days=self.review_days))

    def phase_due(self, window: CycleWindow, now: datetime) -> str:
        """The phase the schedule puts ``window`` in at ``now`` (before it opens: ``open``, as it was created early)."""
        if now >= window.end:
            return Phase.CLOSED
        if now >= window.start:
            return Phase.PUBLISHED
        if now >= self.review_starts_at(window):
            return Phase.IN_REVIEW
        return Phase.OPEN

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        return self.midnight(day), self.midnight(day + timedelta(days=1))
