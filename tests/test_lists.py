"""SyncedList against a plain list, on both backends."""

from __future__ import annotations

import copy
import pickle

import pytest

from redis_memory import Memory, StaleReferenceError, SyncedList


def test_append_extend_insert(mem: Memory, other: Memory) -> None:
    mem.tasks = [1, 2, 3]
    mem.tasks.append(4)
    mem.tasks.extend([5, 6])
    mem.tasks.insert(0, 0)
    mem.tasks.insert(3, 2.5)
    mem.tasks.insert(-1, 5.5)
    mem.tasks.insert(100, 7)
    mem.tasks.insert(-100, -1)
    expected = [-1, 0, 1, 2, 2.5, 3, 4, 5, 5.5, 6, 7]
    assert other.tasks == expected
    assert type(other.tasks[4]) is float


def test_insert_in_second_half(mem: Memory) -> None:
    mem.items = list(range(10))
    plain = list(range(10))
    for index, value in [(7, "a"), (9, "b"), (5, "c"), (-2, "d")]:
        mem.items.insert(index, value)
        plain.insert(index, value)
    assert mem.items.aslist() == plain


def test_index_reads_and_errors(mem: Memory) -> None:
    mem.items = [10, 20, 30]
    assert mem.items[0] == 10
    assert mem.items[-1] == 30
    assert mem.items[-3] == 10
    with pytest.raises(IndexError, match="^list index out of range$"):
        mem.items[3]
    with pytest.raises(IndexError, match="^list index out of range$"):
        mem.items[-4]
    with pytest.raises(
        TypeError, match="list indices must be integers or slices, not str"
    ):
        mem.items["0"]


def test_setitem_and_errors(mem: Memory, other: Memory) -> None:
    mem.items = [1, 2, 3]
    mem.items[0] = 10
    mem.items[-1] = 30
    assert other.items == [10, 2, 30]
    with pytest.raises(IndexError, match="^list assignment index out of range$"):
        mem.items[3] = 1


@pytest.mark.parametrize(
    "index",
    [
        slice(1, 3),
        slice(None, 2),
        slice(2, None),
        slice(None, None, 2),
        slice(None, None, -1),
        slice(5, 1, -2),
        slice(-3, None),
        slice(10, 20),
        slice(3, 1),
    ],
)
def test_slice_reads(mem: Memory, index: slice) -> None:
    plain = [0, 1, [2, 3], {"a": 4}, 5, 6]
    mem.items = plain
    got = mem.items[index]
    assert got == plain[index]
    assert type(got) is list
    for item in got:
        assert type(item) in (int, list, dict)


@pytest.mark.parametrize(
    ("index", "values"),
    [
        (slice(1, 3), [20, 30]),
        (slice(1, 3), []),
        (slice(1, 1), ["x", "y"]),
        (slice(0, 0), ["front"]),
        (slice(5, None), ["tail", "more"]),
        (slice(None, None), [9]),
        (slice(4, 2), ["between"]),
        (slice(None, None, 2), ["a", "b", "c"]),
        (slice(None, None, -2), ["a", "b", "c"]),
        (slice(1, 5, 3), [[1], {"k": 2}]),
    ],
)
def test_slice_assignment(
    mem: Memory, other: Memory, index: slice, values: list[object]
) -> None:
    plain = [0, 1, 2, 3, 4, 5]
    mem.items = plain
    mem.items[index] = values
    plain[index] = values
    assert other.items.aslist() == plain


def test_extended_slice_size_mismatch(mem: Memory) -> None:
    mem.items = [0, 1, 2, 3]
    with pytest.raises(
        ValueError,
        match="attempt to assign sequence of size 1 to extended slice of size 2",
    ):
        mem.items[::2] = [1]
    assert mem.items == [0, 1, 2, 3]


def test_slice_step_zero(mem: Memory) -> None:
    mem.items = [0, 1, 2]
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        mem.items[::0]
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        mem.items[::0] = []
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        del mem.items[::0]
    assert mem.items == [0, 1, 2]


def test_slice_assign_non_iterable(mem: Memory) -> None:
    mem.items = [0, 1, 2]
    with pytest.raises(TypeError, match="can only assign an iterable"):
        mem.items[0:1] = 5
    with pytest.raises(TypeError, match="must assign iterable to extended slice"):
        mem.items[::2] = 5


@pytest.mark.parametrize(
    "index",
    [
        0,
        -1,
        2,
        slice(1, 3),
        slice(None, None, 2),
        slice(None, None, -3),
        slice(0, 0),
        slice(None),
    ],
)
def test_delitem(mem: Memory, other: Memory, index: object) -> None:
    plain = [0, [1], 2, {"x": [3]}, 4, 5]
    mem.items = plain
    del mem.items[index]
    del plain[index]
    assert other.items.aslist() == plain


def test_delitem_out_of_range(mem: Memory) -> None:
    mem.items = [1]
    with pytest.raises(IndexError, match="^list assignment index out of range$"):
        del mem.items[5]


def test_pop(mem: Memory, other: Memory) -> None:
    mem.items = [1, [2, 3], 4, 5]
    assert mem.items.pop() == 5
    assert mem.items.pop(0) == 1
    nested = mem.items.pop(0)
    assert nested == [2, 3]
    assert type(nested) is list
    assert other.items == [4]
    assert mem.items.pop(-1) == 4
    with pytest.raises(IndexError, match="^pop from empty list$"):
        mem.items.pop()
    mem.items.append(1)
    with pytest.raises(IndexError, match="^pop index out of range$"):
        mem.items.pop(3)


def test_pop_middle(mem: Memory) -> None:
    plain = list(range(20))
    mem.items = plain
    for index in (10, 3, 15, -4):
        assert mem.items.pop(index) == plain.pop(index)
    assert mem.items == plain


def test_remove_index_count_contains(mem: Memory) -> None:
    mem.items = [1, "a", [1, 2], 2.0, "a", {"k": 1}]
    assert "a" in mem.items
    assert 2 in mem.items  # 2 == 2.0, as in a list
    assert [1, 2] in mem.items
    assert {"k": 1} in mem.items
    assert 99 not in mem.items
    assert mem.items.index("a") == 1
    assert mem.items.index("a", 2) == 4
    assert mem.items.index([1, 2]) == 2
    assert mem.items.count("a") == 2
    with pytest.raises(ValueError, match="'zz' is not in list"):
        mem.items.index("zz")
    mem.items.remove("a")
    mem.items.remove([1, 2])
    assert mem.items == [1, 2.0, "a", {"k": 1}]
    with pytest.raises(ValueError, match=r"list.remove\(x\): x not in list"):
        mem.items.remove("zz")


def test_clear_sort_reverse(mem: Memory, other: Memory) -> None:
    mem.items = [3, 1, 2]
    mem.items.sort()
    assert other.items == [1, 2, 3]
    mem.items.sort(reverse=True)
    assert other.items == [3, 2, 1]
    mem.items.reverse()
    assert other.items == [1, 2, 3]
    mem.words = ["bb", "a", "ccc", "dd"]
    mem.words.sort(key=len)
    assert other.words == ["a", "bb", "dd", "ccc"]
    mem.words.sort(key=len, reverse=True)
    assert other.words == ["ccc", "bb", "dd", "a"]
    mem.items.clear()
    assert other.items == []
    assert len(other.items) == 0


def test_sort_keeps_nested_values_live(mem: Memory) -> None:
    mem.rows = [{"n": 2}, {"n": 1}]
    mem.rows.sort(key=lambda row: row["n"])
    first = mem.rows[0]
    first["n"] = 10
    assert mem.rows == [{"n": 10}, {"n": 2}]


def test_sort_key_raising_leaves_list_unchanged(mem: Memory) -> None:
    mem.items = [3, 1, 2]
    calls = []

    def bad_key(value: int) -> int:
        calls.append(value)
        if len(calls) == 2:
            raise RuntimeError("key failed")
        return value

    with pytest.raises(RuntimeError, match="key failed"):
        mem.items.sort(key=bad_key)
    assert mem.items == [3, 1, 2]
    mem.mixed = [1, "a"]
    with pytest.raises(TypeError):
        mem.mixed.sort()
    assert mem.mixed == [1, "a"]


def test_augmented_assignment(mem: Memory, other: Memory) -> None:
    mem.items = [1, [2]]
    mem.items += [3]
    mem.items += (4,)
    assert other.items == [1, [2], 3, 4]
    items = mem.items
    items *= 2
    assert other.items == [1, [2], 3, 4, 1, [2], 3, 4]
    # The repeated nested list is a separate node: changing one copy leaves the other.
    other.items[1].append("x")
    assert mem.items == [1, [2, "x"], 3, 4, 1, [2], 3, 4]
    items *= 0
    assert other.items == []


def test_reads_like_a_list(mem: Memory) -> None:
    plain = [3, "b", [1], {"a": None}]
    mem.items = plain
    assert len(mem.items) == 4
    assert list(mem.items) == plain
    assert list(reversed(mem.items)) == list(reversed(plain))
    assert repr(mem.items) == repr(plain)
    assert str(mem.items) == str(plain)
    assert mem.items == plain
    assert plain == mem.items
    assert mem.items != [1]
    assert mem.items != (3, "b", [1], {"a": None})
    assert bool(mem.items)
    mem.empty = []
    assert not mem.empty
    mem.numbers = [1, 2]
    assert mem.numbers < [1, 3]
    assert mem.numbers <= [1, 2]
    assert mem.numbers > [1]
    assert mem.numbers >= [1, 2]
    assert mem.numbers + [3] == [1, 2, 3]
    assert [0] + mem.numbers == [0, 1, 2]
    assert mem.numbers * 2 == [1, 2, 1, 2]
    assert 2 * mem.numbers == [1, 2, 1, 2]
    with pytest.raises(
        TypeError, match=r'can only concatenate list \(not "tuple"\) to list'
    ):
        mem.numbers + (3,)


def test_unhashable(mem: Memory) -> None:
    mem.items = [1]
    with pytest.raises(TypeError, match="unhashable"):
        hash(mem.items)


def test_copies_are_plain(mem: Memory) -> None:
    mem.items = [1, [2, {"a": 3}]]
    for made in (
        mem.items.copy(),
        copy.copy(mem.items),
        copy.deepcopy(mem.items),
        pickle.loads(pickle.dumps(mem.items)),
        mem.items.aslist(),
    ):
        assert made == [1, [2, {"a": 3}]]
        assert type(made) is list
        assert type(made[1]) is list
        assert type(made[1][1]) is dict


def test_nested_handles_are_live(mem: Memory, other: Memory) -> None:
    mem.grid = [[1, 2], [3, 4]]
    row = mem.grid[1]
    assert isinstance(row, SyncedList)
    row.append(5)
    assert other.grid == [[1, 2], [3, 4, 5]]
    for item in mem.grid:
        item.append(0)
    assert other.grid == [[1, 2, 0], [3, 4, 5, 0]]


def test_stale_handle_raises(mem: Memory, other: Memory) -> None:
    mem.grid = [[1, 2]]
    row = mem.grid[0]
    other.grid = []
    with pytest.raises(StaleReferenceError, match=r"mem.grid\[0\] no longer exists"):
        row.append(3)
    with pytest.raises(StaleReferenceError):
        len(row)
    with pytest.raises(StaleReferenceError):
        row[0]
    assert other.grid == []


def test_extend_with_self(mem: Memory) -> None:
    mem.items = [1, [2]]
    mem.items.extend(mem.items)
    assert mem.items == [1, [2], 1, [2]]
    mem.items[1].append(3)
    assert mem.items == [1, [2, 3], 1, [2]]


def test_large_list(mem: Memory) -> None:
    plain = list(range(5000))
    mem.big = plain
    mem.big.append(5000)
    assert len(mem.big) == 5001
    assert mem.big[2500] == 2500
    assert mem.big.aslist() == [*plain, 5000]
    del mem.big[100:4900]
    assert mem.big.aslist() == [*plain[:100], *plain[4900:], 5000]


def test_index_argument_errors_match_list(mem: Memory) -> None:
    plain = [1, 2]
    mem.items = plain
    cases = [
        lambda target: target[10**20],
        lambda target: target.__setitem__(10**20, 0),
        lambda target: target.__delitem__(10**20),
        lambda target: target.insert(10**20, 0),
        lambda target: target.pop(10**20),
        lambda target: target.pop(1.0),
        lambda target: target.insert(None, 0),
        lambda target: target.index(1, None),
        lambda target: target.index(1, 0, "x"),
    ]
    for case in cases:
        with pytest.raises(Exception) as expected:
            case(plain)
        with pytest.raises(type(expected.value)) as got:
            case(mem.items)
        assert str(got.value) == str(expected.value)
    assert mem.items == [1, 2]


def test_stale_handle_pushes_nothing(mem: Memory, other: Memory) -> None:
    mem.grid = [[1, 2], []]
    full, empty = mem.grid[0], mem.grid[1]
    other.grid = []
    for write in (
        lambda: full.append(3),
        lambda: full.insert(0, 0),
        lambda: full.extend([4, 5]),
        lambda: empty.append(3),
    ):
        with pytest.raises(
            StaleReferenceError, match=r"mem.grid\[\d\] no longer exists"
        ):
            write()
    assert other.grid == []
    for row in (full, empty):
        assert not row._store.connection.command(
            "EXISTS", row._store.keys.node(row._id)
        )
