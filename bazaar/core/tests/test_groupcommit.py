"""GroupCommit: callers that arrive while a group is being applied are applied together, each answered with its
own result only after its group's apply returned; a failure reaches every caller of that group and no other."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from bazaar.core.groupcommit import GroupCommit


class Boom(Exception):
    pass


def _start(target: object, n: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]  # type: ignore[arg-type]
    for t in threads:
        t.start()
    return threads


def test_writers_arriving_during_a_group_form_the_next_group_and_each_gets_its_own_result() -> None:
    first_running = threading.Event()
    release = threading.Event()
    groups: list[list[int]] = []

    def apply(items: Sequence[int]) -> list[int | BaseException]:
        groups.append(list(items))
        if len(groups) == 1:
            first_running.set()
            assert release.wait(10)
        return [i * 10 for i in items]

    gc: GroupCommit[int, int] = GroupCommit(apply, name="test")
    results: dict[int, int] = {}
    lock = threading.Lock()

    def call(i: int) -> None:
        r = gc.submit(i)
        with lock:
            results[i] = r

    leader = threading.Thread(target=call, args=(100,))
    leader.start()
    assert first_running.wait(10)
    followers = _start(call, 5)
    while gc.waiting() < 5:  # every follower is queued behind the running group
        pass
    assert results == {}  # nobody is answered before the apply returns
    release.set()
    for t in [leader, *followers]:
        t.join(10)
    assert groups[0] == [100]
    assert sorted(groups[1]) == [0, 1, 2, 3, 4]
    assert len(groups) == 2
    assert results == {100: 1000, 0: 0, 1: 10, 2: 20, 3: 30, 4: 40}
    assert (gc.groups, gc.items) == (2, 6)


def test_a_failed_group_raises_in_each_of_its_callers_only() -> None:
    first_running = threading.Event()
    release = threading.Event()
    calls = [0]

    def apply(items: Sequence[int]) -> list[int | BaseException]:
        calls[0] += 1
        if calls[0] == 1:
            first_running.set()
            assert release.wait(10)
            return [1]
        if calls[0] == 2:
            raise Boom("database gone")
        return list(items)

    gc: GroupCommit[int, int] = GroupCommit(apply, name="test")
    outcomes: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            outcomes[i] = gc.submit(i)
        except Boom as exc:
            outcomes[i] = exc

    leader = threading.Thread(target=call, args=(-1,))
    leader.start()
    assert first_running.wait(10)
    followers = _start(call, 3)
    while gc.waiting() < 3:
        pass
    release.set()
    for t in [leader, *followers]:
        t.join(10)
    assert outcomes[-1] == 1
    errors = [outcomes[i] for i in range(3)]
    assert all(isinstance(e, Boom) for e in errors)
    assert len({id(e) for e in errors}) == 3  # each caller raises its own copy
    assert gc.submit(7) == 7  # the next group is unaffected


def test_a_group_ends_at_the_first_item_that_may_not_join_and_results_can_be_per_item_errors() -> None:
    first_running = threading.Event()
    release = threading.Event()
    groups: list[list[str]] = []

    def apply(items: Sequence[str]) -> list[str | BaseException]:
        groups.append(list(items))
        if len(groups) == 1:
            first_running.set()
            assert release.wait(10)
        return [Boom(i) if i == "bad" else i.upper() for i in items]

    gc: GroupCommit[str, str] = GroupCommit(
        apply, name="test", joins=lambda group, item: item not in group, max_items=3
    )
    outcomes: dict[int, object] = {}

    def call(i: int, item: str) -> None:
        try:
            outcomes[i] = gc.submit(item)
        except Boom as exc:
            outcomes[i] = exc

    leader = threading.Thread(target=call, args=(0, "x"))
    leader.start()
    assert first_running.wait(10)
    threads = []
    for i, item in enumerate(["a", "bad", "a", "b", "c"], start=1):  # queued in this order
        t = threading.Thread(target=call, args=(i, item))
        t.start()
        threads.append(t)
        while gc.waiting() < i:
            pass
    release.set()
    for t in [leader, *threads]:
        t.join(10)
    assert groups == [["x"], ["a", "bad"], ["a", "b", "c"]]  # the repeated "a" starts the next group
    assert outcomes[1] == "A"
    assert isinstance(outcomes[2], Boom)
    assert outcomes[3] == "A"
    assert (outcomes[4], outcomes[5]) == ("B", "C")


def test_a_lone_caller_is_applied_at_once() -> None:
    gc: GroupCommit[int, int] = GroupCommit(lambda items: [i + 1 for i in items], name="test")
    assert [gc.submit(i) for i in range(3)] == [1, 2, 3]
    assert (gc.groups, gc.items) == (3, 3)


def test_apply_returning_the_wrong_count_is_an_error_for_the_group() -> None:
    gc: GroupCommit[int, int] = GroupCommit(lambda items: [], name="test")
    with pytest.raises(RuntimeError):
        gc.submit(1)


def _gathering_world(
    gather: float, max_wait: float
) -> tuple[GroupCommit[int, int], list[list[int]], threading.Event, threading.Event]:
    """A GroupCommit whose first group (one item) is held until released, so the test decides who queues."""
    first_running = threading.Event()
    release = threading.Event()
    groups: list[list[int]] = []

    def apply(items: Sequence[int]) -> list[int | BaseException]:
        groups.append(list(items))
        if len(groups) == 1:
            first_running.set()
            assert release.wait(10)
        return list(items)

    gc: GroupCommit[int, int] = GroupCommit(apply, name="test", gather=gather, max_wait=max_wait)
    return gc, groups, first_running, release


def test_a_new_leader_waits_for_the_writers_of_the_last_group_to_come_back() -> None:
    # Group 1 = [100]; 1 and 2 queue behind it. When it finishes, three callers were in flight (100 and the two
    # queued), so the next leader (1) waits for a third; 100 comes back with its next write (101) and joins.
    gc, groups, first_running, release = _gathering_world(gather=1.0, max_wait=5.0)

    def writer() -> None:
        gc.submit(100)
        while gc.gathers < 1:  # the next leader is waiting (its window: the ~0.2 s the first group took)
            pass
        gc.submit(101)  # the "next request" of the thread whose write was just answered

    lead = threading.Thread(target=writer)
    lead.start()
    assert first_running.wait(10)
    followers = _start(lambda i: gc.submit(i + 1), 2)
    while gc.waiting() < 2:
        pass
    time.sleep(0.2)  # the first group's commit takes 0.2 s: the gathering window of the next leader
    release.set()
    for t in [lead, *followers]:
        t.join(10)
    assert groups[0] == [100]
    assert sorted(groups[1]) == [1, 2, 101]
    assert len(groups) == 2
    assert gc.gathers == 1


def test_without_gathering_the_returning_writer_makes_a_group_of_its_own() -> None:
    # The control: the same sequence with gather=0 splits 101 off (the alternation gathering removes).
    gc, groups, first_running, release = _gathering_world(gather=0.0, max_wait=5.0)

    def writer() -> None:
        gc.submit(100)
        while len(groups) < 2:  # let the queued pair start its group first, deterministically
            pass
        gc.submit(101)

    lead = threading.Thread(target=writer)
    lead.start()
    assert first_running.wait(10)
    followers = _start(lambda i: gc.submit(i + 1), 2)
    while gc.waiting() < 2:
        pass
    release.set()
    for t in [lead, *followers]:
        t.join(10)
    assert groups == [[100], [1, 2], [101]]
    assert gc.gathers == 0


def test_the_gathering_wait_is_bounded_by_the_last_commit() -> None:
    # Nobody comes back: the leader waits at most gather x the last apply (here capped by max_wait) and goes on.
    gc, groups, first_running, release = _gathering_world(gather=1.0, max_wait=0.05)
    lead = threading.Thread(target=gc.submit, args=(100,))
    lead.start()
    assert first_running.wait(10)
    followers = _start(lambda i: gc.submit(i + 1), 2)
    while gc.waiting() < 2:
        pass
    release.set()
    for t in [lead, *followers]:
        t.join(10)
    assert not any(t.is_alive() for t in [lead, *followers])
    assert groups == [[100], [1, 2]]
    assert gc.gathers == 1


def test_a_lone_writer_never_waits() -> None:
    groups: list[list[int]] = []

    def apply(items: Sequence[int]) -> list[int | BaseException]:
        groups.append(list(items))
        return list(items)

    gc: GroupCommit[int, int] = GroupCommit(apply, name="test", gather=1.0, max_wait=5.0)
    for i in range(20):
        assert gc.submit(i) == i
    assert groups == [[i] for i in range(20)]
    assert gc.gathers == 0
