"""The core walkthrough, written here and read back by a second process."""

from __future__ import annotations

from conftest import run_python
from redis_memory import Memory, SyncedDict, SyncedList


def test_walkthrough_seen_by_second_process(real_mem: Memory, namespace: str) -> None:
    mem = real_mem
    mem.tasks = [1, 2, 3]
    mem.tasks.append(4)
    mem.tasks.extend([5, 6])
    mem.tasks.insert(0, 0)
    mem.items = [1, 2, 3]
    mem.items[0] = 10
    mem.items[1:3] = [20, 30]
    mem.config = {"theme": "dark", "lang": "en"}
    mem.config["notifications"] = True
    mem.config.update({"font": "Arial", "size": 12})
    mem.complex = {
        "users": [{"name": "Ann", "scores": [95, 87]}],
        "settings": {"push": False},
    }
    mem.complex["users"][0]["scores"].append(96)
    mem.complex["settings"]["push"] = True

    assert isinstance(mem.tasks, SyncedList)
    assert isinstance(mem.config, SyncedDict)
    plain = mem.complex.asdict()
    assert type(plain) is dict
    assert type(plain["users"]) is list
    assert type(plain["users"][0]) is dict

    seen = run_python(
        """
        emit({
            "tasks": mem.tasks.aslist(),
            "items": mem.items.aslist(),
            "config": mem.config.asdict(),
            "scores": mem.complex["users"][0]["scores"].aslist(),
            "push": mem.complex["settings"]["push"],
            "names": list(mem),
        })
        """,
        namespace=namespace,
    )
    assert seen == {
        "tasks": [0, 1, 2, 3, 4, 5, 6],
        "items": [10, 20, 30],
        "config": {
            "theme": "dark",
            "lang": "en",
            "notifications": True,
            "font": "Arial",
            "size": 12,
        },
        "scores": [95, 87, 96],
        "push": True,
        "names": ["tasks", "items", "config", "complex"],
    }


def test_second_process_writes_are_seen_here(real_mem: Memory, namespace: str) -> None:
    real_mem.shared = {"log": []}
    run_python(
        """
        mem.shared["log"].append("from child")
        mem.shared["count"] = 1
        emit(True)
        """,
        namespace=namespace,
    )
    assert real_mem.shared["log"] == ["from child"]
    assert real_mem.shared["count"] == 1


def test_read_value_stays_live(real_mem: Memory, namespace: str) -> None:
    real_mem.complex = {"users": [{"name": "Ann"}]}
    user = real_mem.complex["users"][0]
    user["name"] = "Bo"
    assert (
        run_python('emit(mem.complex["users"][0]["name"])', namespace=namespace) == "Bo"
    )
