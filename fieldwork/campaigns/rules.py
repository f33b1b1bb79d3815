"""Who is due which message when: plain functions over plain values, no database.

A participant's messages in a campaign are numbered by **step**: 0 is the invitation,
1 … K the reminders. The invitation is due when the campaign starts; reminder n is due
"N days after the last message to that participant", once step n - 1 has gone out, and
never after the site's survey closes. A time inside the quiet hours (Japan time) moves to
their end. The channel is the first the participant can be reached on, in the campaign's
order; after a failure, the next one; the printed letter is always last.

**Letters.** A letter is on the print list (queued) until someone prints it; marked
printed, it counts as sent at that moment. For the timing of the next step a letter on the
list counts as gone out at its due time (or when it was printed, if that was later): an
unprinted letter never holds the participant's next reminder back. When a newer message
to the same participant is created (the next reminder, by whatever channel, or a message
of another campaign), a letter still unprinted that was due no later than it is outdated:
it is withdrawn from the print list (``outdated_letters``), so that nobody posts an
invitation after its reminder, and the list holds one letter per participant at most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

JAPAN = ZoneInfo("Asia/Tokyo")

LINE = "line"
EMAIL = "email"
LETTER = "letter"


@dataclass(frozen=True)
class QuietHours:
    """From ``start`` to ``end``, Japan time; it may run over midnight (21:00–08:00).
    ``start == end``: no quiet hours."""

    start: time
    end: time

    def contains(self, at: datetime) -> bool:
        clock = at.astimezone(JAPAN).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    def outside(self, at: datetime) -> datetime:
        """``at`` itself, or the end of the quiet hours it falls inside."""
        if not self.contains(at):
            return at
        local = at.astimezone(JAPAN)
        end = datetime.combine(local.date(), self.end, tzinfo=JAPAN)
        if end <= local:  # after the start, before midnight: the end is tomorrow
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=JAPAN)
        return end


@dataclass(frozen=True)
class Rules:
    """A campaign's timing, as plain values."""

    starts_at: datetime
    reminder_after: timedelta
    max_reminders: int
    quiet: QuietHours


@dataclass(frozen=True)
class Progress:
    """Where one participant stands in one campaign.

    ``steps``: how many steps they already have a message for (0: not even invited);
    ``settled``: the last of them has gone out (sent, or put on the letter list), rather
    than waiting, being sent or failed on a channel with another one to try;
    ``last_message_at``: the latest message to them, of any campaign and channel;
    ``wanted``: they are still someone the campaign writes to (active, not answered, in its
    audience); ``closes_at``: when their site's survey closes, if it does."""

    steps: int
    settled: bool
    last_message_at: datetime | None
    wanted: bool = True
    closes_at: datetime | None = None


@dataclass(frozen=True)
class Due:
    step: int
    at: datetime

    @property
    def kind(self) -> str:
        return "invitation" if self.step == 0 else "reminder"


def next_message(rules: Rules, progress: Progress) -> Due | None:
    """The participant's next message and when it is due (possibly in the future), or
    None when nothing more is coming."""
    if not progress.wanted:
        return None
    if progress.steps == 0:
        at = rules.starts_at
    else:
        if not progress.settled or progress.steps > rules.max_reminders:
            return None
        at = (progress.last_message_at or rules.starts_at) + rules.reminder_after
    at = rules.quiet.outside(at)
    if progress.closes_at is not None and at >= progress.closes_at:
        return None
    return Due(step=progress.steps, at=at)


@dataclass(frozen=True)
class Unprinted:
    """A letter on the print list (queued, not yet printed): its delivery id and due time."""

    id: int
    due_at: datetime


def outdated_letters(unprinted: Sequence[Unprinted], *, replaced_at: datetime) -> list[int]:
    """The ids of the ``unprinted`` letters that a new message to the same participant, due
    at ``replaced_at``, makes outdated: those due no later than it. A letter due after it
    (one waiting for the end of the quiet hours, say) is newer, and stays."""
    return [letter.id for letter in unprinted if letter.due_at <= replaced_at]


def send_at(due: Due, quiet: QuietHours, now: datetime) -> datetime:
    """When a message found due at ``now`` may go: its due time, or now if the beat is
    late, and never inside the quiet hours (a beat running at 23:00 sends it at 08:00)."""
    return quiet.outside(max(due.at, now))


def channels(order: Sequence[str], *, has_line: bool, has_email: bool) -> list[str]:
    """The channels a participant can be reached on, in the campaign's ``order``, ending
    with the printed letter."""
    reachable = {LINE: has_line, EMAIL: has_email}
    return [c for c in order if c != LETTER and reachable.get(c, False)] + [LETTER]


def next_channel(
    order: Sequence[str], *, after: str | None, has_line: bool, has_email: bool
) -> str | None:
    """The channel to try first (``after`` None), or the one after ``after`` failed;
    None after the letter."""
    chain = channels(order, has_line=has_line, has_email=has_email)
    if after is None:
        return chain[0]
    full = [c for c in order if c != LETTER] + [LETTER]
    if after not in full:
        return LETTER
    rank = full.index(after)
    return next((c for c in chain if full.index(c) > rank), None)


def schedule_problems(*, starts_at: datetime, quiet: QuietHours, now: datetime) -> dict[str, str]:
    """What is wrong with a campaign's start, by field, as a code: ``"past"`` or
    ``"quiet"`` (inside the quiet hours). ``services.schedule_problems`` puts it in words."""
    problems: dict[str, str] = {}
    if starts_at < now:
        problems["starts_at"] = "past"
    elif quiet.contains(starts_at):
        problems["starts_at"] = "quiet"
    return problems
