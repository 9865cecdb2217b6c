"""The dispatch order (issue 14): priority first, then the watches take turns, FIFO within a
watch; a target that may not start keeps its submissions' place and its watch's turn."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hotfolder.transfer.ready_queue import Ready, ReadyQueue

WATCHES = ("a", "b", "c", "d")

# A run of the dispatcher: ("push", watch, priority) or ("pop",).
Op = tuple[str, int, int]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, len(WATCHES) - 1), st.integers(0, 9)),
        st.tuples(st.just("pop"), st.just(0), st.just(0)),
    ),
    max_size=120,
)


def item(n: int, watch: str, priority: int = 5, target: str = "t") -> Ready:
    return Ready(f"{watch}{n}", watch, target, priority)


@settings(max_examples=300)
@given(ops)
def test_no_watch_with_ready_work_waits_more_than_one_round(run: list[Op]) -> None:
    """Equal priorities: while a watch has ready work, at most (watches - 1) dispatches go
    to other watches before it is served."""
    q = ReadyQueue()
    queued = dict.fromkeys(WATCHES, 0)
    waited = dict.fromkeys(WATCHES, 0)
    for n, (op, w, _) in enumerate(run):
        if op == "push":
            q.push(item(n, WATCHES[w]))
            queued[WATCHES[w]] += 1
            continue
        got = q.pop()
        if got is None:
            assert not any(queued.values())
            continue
        for other in WATCHES:
            if other != got.watch and queued[other]:
                waited[other] += 1
                assert waited[other] <= len(WATCHES) - 1, f"{other} starved"
        waited[got.watch] = 0
        queued[got.watch] -= 1


@settings(max_examples=300)
@given(ops)
def test_the_highest_priority_goes_first_and_each_watch_keeps_its_order(run: list[Op]) -> None:
    q = ReadyQueue()
    pending: dict[str, tuple[int, int, str]] = {}  # sid -> (priority, arrival, watch)
    for n, (op, w, priority) in enumerate(run):
        if op == "push":
            it = item(n, WATCHES[w], priority)
            q.push(it)
            pending[it.sid] = (priority, n, it.watch)
            continue
        got = q.pop()
        if got is None:
            assert not pending
            continue
        best = max(p for p, _, _ in pending.values())
        assert got.priority == best
        # Nothing of the same watch and priority that arrived earlier is still waiting.
        _, arrival, _ = pending.pop(got.sid)
        assert not [
            s
            for s, (p, a, watch) in pending.items()
            if watch == got.watch and p == got.priority and a < arrival
        ]


def test_an_urgent_clip_goes_next_behind_a_200_episode_drop() -> None:
    q = ReadyQueue()
    for n in range(200):
        q.push(item(n, "series"))
    assert q.pop() == item(0, "series")
    q.push(item(0, "news"))
    assert q.pop() == item(0, "news")
    assert q.order()[:2] == [item(1, "series"), item(2, "series")]


def test_without_fair_share_the_urgent_clip_waits_for_the_whole_drop() -> None:
    q = ReadyQueue(fair=False)
    for n in range(200):
        q.push(item(n, "series"))
    q.push(item(0, "news"))
    assert [i.sid for i in q.order()].index("news0") == 200


def test_a_blocked_target_keeps_its_place_and_its_turn() -> None:
    q = ReadyQueue()
    q.push(item(0, "c", target="day"))
    q.push(item(1, "c", target="day"))
    assert q.pop() == item(0, "c", target="day")
    q.push(item(0, "a", target="night"))
    q.push(item(0, "b", target="day"))
    q.push(item(1, "b", target="day"))
    closed = {"night"}

    def may_start(it: Ready) -> bool:
        return it.target not in closed

    assert q.pop(may_start) == item(0, "b", target="day")
    closed.clear()
    # a has not been served yet: its turn comes before c's second, which was served once.
    assert q.pop(may_start) == item(0, "a", target="night")
    assert q.pop(may_start) == item(1, "c", target="day")
    assert q.pop(may_start) == item(1, "b", target="day")


def test_a_higher_priority_that_cannot_start_does_not_idle_the_workers() -> None:
    q = ReadyQueue()
    q.push(item(0, "a", priority=9, target="full"))
    q.push(item(0, "b", priority=1, target="free"))
    assert q.pop(lambda it: it.target != "full") == item(0, "b", priority=1, target="free")
    assert q.pop(lambda it: it.target != "full") is None
    assert len(q) == 1


def test_push_twice_and_remove() -> None:
    q = ReadyQueue()
    assert q.push(item(0, "a"))
    assert not q.push(item(0, "a"))
    assert "a0" in q
    assert q.remove("a0")
    assert not q.remove("a0")
    assert q.pop() is None
