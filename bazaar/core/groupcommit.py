"""Group commit: concurrent writers of one process share one transaction, each answered only after its commit.

A write that commits alone pays a commit (a WAL flush) and, when writers of the same thing serialize on a row lock,
holds that lock across the flush: the next writer waits for it. With :class:`GroupCommit` the threads of a process
that write at the same moment hand their items to one of them, the *leader*, which applies them all in one
transaction and commits once; every caller gets its own result (or its own error) only after that commit, so an
answered write is as durable as one committed alone. This is what etcd does with its raft entries and PostgreSQL
itself with ``commit_delay``; here no one waits on a timer: the group is whatever arrived while the previous group
was being written (a lone writer is applied at once, as before).

Leader/follower, no extra thread: the first caller finding no leader becomes one; callers arriving while it writes
queue; when it is done it wakes its group and hands leadership to the first queued caller, whose group is
everything queued behind it (up to ``max_items``, and only items ``joins`` accepts: e.g. not the same key twice).

Gathering: the callers of a finished group are about to come back with their next writes (a server's threads
serve one request after another), but they are not queued yet when the next leader takes its group, so with N
threads the groups alternate between one and N-1. With ``gather`` > 0 a new leader whose queue is shorter than
the callers in flight a moment ago (the queue when the last group finished plus that group) waits for them, at
most ``gather`` times as long as the last group's apply took (and never more than ``max_wait`` seconds). A lone
caller never waits: with nobody else in flight the expected group is itself. This is PostgreSQL's
``commit_delay`` with the wait bounded by the commit it amortizes instead of a fixed number.
A failure of the group's transaction (a database error) is raised in every caller of that group: nothing of it
was committed, so each may retry alone.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from bazaar.core import metrics

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("done", "error", "event", "item", "lead", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.event = threading.Event()
        self.lead = False
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Run ``apply`` over the items of concurrent :meth:`submit` calls, a group at a time.

    ``apply(items)`` runs in the leader's thread and owns the transaction (it must commit before it returns); it
    returns one entry per item, in order: the item's result or the exception to raise for it alone.
    ``joins(group, item)`` says whether ``item`` may join ``group`` (the group ends at the first that may not).
    """

    def __init__(
        self,
        apply: Callable[[Sequence[T]], Sequence[R | BaseException]],
        *,
        name: str,
        max_items: int = 64,
        joins: Callable[[Sequence[T], T], bool] | None = None,
        gather: float = 0.0,
        max_wait: float = 0.002,
    ) -> None:
        self._apply = apply
        self._max = max(1, max_items)
        self._joins = joins
        self._gather = gather
        self._max_wait = max_wait
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._expected = 1  # callers in flight when the last group finished (its own and those queued)
        self._last_apply = 0.0  # seconds the last group's apply took
        #: leaders that waited for callers to come back (tests, design notes)
        self.gathers = 0
        self._queue: list[_Slot[T, R]] = []
        self._leading = False
        #: groups applied and items in them (also exported as metrics: the mean group size is their ratio).
        self.groups = 0
        self.items = 0
        self._groups_metric = metrics.GROUP_COMMITS.labels(name)
        self._items_metric = metrics.GROUP_COMMIT_ITEMS.labels(name)

    def waiting(self) -> int:
        """How many callers are queued behind the group being applied."""
        with self._lock:
            return len(self._queue)

    def submit(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            if self._gather:
                self._arrived.notify()
            if not self._leading:  # invariant: no leader means an empty queue, so this slot is its head
                self._leading = slot.lead = True
        while not slot.done:
            if slot.lead:
                slot.lead = False
                self._lead()
            else:
                slot.event.wait()
                slot.event.clear()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _take(self) -> list[_Slot[T, R]]:
        """The group: the queue's head and whoever may join it. Caller holds the lock."""
        group = [self._queue[0]]
        items = [group[0].item]
        for slot in self._queue[1 : self._max]:
            if self._joins is not None and not self._joins(items, slot.item):
                break
            group.append(slot)
            items.append(slot.item)
        del self._queue[: len(group)]
        return group

    def _gather_callers(self) -> None:
        """Wait (briefly, see the module) for the callers of the last group to queue again. Caller holds the lock."""
        if not self._gather or len(self._queue) >= self._expected:
            return
        wait = min(self._max_wait, self._gather * self._last_apply)
        if wait <= 0:
            return
        self.gathers += 1
        end = time.monotonic() + wait
        while len(self._queue) < self._expected:
            left = end - time.monotonic()
            if left <= 0 or not self._arrived.wait(left):
                return

    def _lead(self) -> None:
        with self._lock:
            self._gather_callers()
            group = self._take()
        started = time.monotonic()
        try:
            outcomes: Sequence[R | BaseException] = self._apply([s.item for s in group])
            if len(outcomes) != len(group):
                raise RuntimeError("GroupCommit.apply returned a result count unlike its items'")
        except BaseException as exc:  # handed to every caller of the group, raised there
            outcomes = [exc if i == 0 else _copy(exc) for i in range(len(group))]
        for slot, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                slot.error = outcome
            else:
                slot.result = outcome
            slot.done = True
        self._last_apply = time.monotonic() - started
        self.groups += 1
        self.items += len(group)
        self._groups_metric.inc()
        self._items_metric.inc(len(group))
        with self._lock:
            successor = self._queue[0] if self._queue else None
            self._expected = min(self._max, len(self._queue) + len(group))
            if successor is None:
                self._leading = False
            else:
                successor.lead = True
        for slot in group:
            slot.event.set()
        if successor is not None:
            successor.event.set()


def _copy(exc: BaseException) -> BaseException:
    """A caller's own copy of a group's exception (one exception object is not raised in several threads)."""
    try:
        dup = copy.copy(exc)
    except Exception:  # one that cannot be copied is shared instead
        return exc
    dup.__cause__ = exc
    return dup
