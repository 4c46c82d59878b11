"""The file backend's guarantees, shown on real files and real processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskdriver.models import (
    Project,
    ProjectConfig,
    ProjectStatus,
    Task,
    TaskStatus,
    new_id_within,
    new_ids_within,
)
from taskdriver.storage import journal
from taskdriver.storage.process_lock import ProcessLock

from conftest import Api, close_app, make_app

WORKER = Path(__file__).parent / "storage_worker.py"


def reopen(data_dir: Path):
    app = make_app(data_dir)
    return app, Api(app.test_client())


def all_task_ids(api: Api, project_id: str) -> list[str]:
    ids: list[str] = []
    while True:
        page = api.get(f"/api/projects/{project_id}/tasks?limit=1000&offset={len(ids)}")
        assert page.status_code == 200
        batch = [t["id"] for t in page.get_json()["data"]]
        ids += batch
        if len(batch) < 1000:
            return ids


def test_every_write_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app, api = reopen(data_dir)
    project = api.project("demo")
    task_type = api.task_type(project["id"], template="Hi {{who}}")
    tasks = [api.task(project["id"], typeId=task_type["id"], variables={"who": str(i)})
             for i in range(20)]
    api.delete(f"/api/tasks/{tasks[3]['id']}")
    api.put(f"/api/projects/{project['id']}", {"description": "changed"})
    close_app(app)
    app, api = reopen(data_dir)
    assert api.get(f"/api/projects/{project['id']}").get_json()["data"]["description"] == \
        "changed"
    assert api.get(f"/api/task-types/{task_type['id']}").status_code == 200
    expected = [t["id"] for i, t in enumerate(tasks) if i != 3]
    assert all_task_ids(api, project["id"]) == expected
    close_app(app)


def test_torn_journal_tail_is_dropped_and_writing_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app, api = reopen(data_dir)
    project = api.project("demo")
    kept = [api.task(project["id"])["id"] for _ in range(3)]
    close_app(app)
    journal_file = next((data_dir / "projects" / project["id"]).glob("journal.*.jsonl"))
    with open(journal_file, "ab") as handle:
        handle.write(b'{"c": [["task", "x", {"id": "x", "proj')  # a writer died here
    app, api = reopen(data_dir)
    assert all_task_ids(api, project["id"]) == kept
    newer = api.task(project["id"])["id"]
    close_app(app)
    app, api = reopen(data_dir)
    assert all_task_ids(api, project["id"]) == [*kept, newer]
    close_app(app)


def test_compaction_keeps_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "MIN_COMPACT_BYTES", 2000)
    data_dir = tmp_path / "data"
    app, api = reopen(data_dir)
    project = api.project("demo")
    ids = [api.task(project["id"], instructions="y" * 300)["id"] for _ in range(60)]
    store_dir = data_dir / "projects" / project["id"]
    generation = journal_generations(store_dir)
    assert max(generation) > 3, "compaction should have run several times"
    assert len(generation) == 1, "old journals are removed after compaction"
    close_app(app)
    app, api = reopen(data_dir)
    assert all_task_ids(api, project["id"]) == ids
    close_app(app)


def test_a_task_reads_back_whole_from_memory_the_journal_and_a_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers hold tasks packed (`storage/packed.py`): every field of every kind of task
    must read back the same from the packed form, after a journal replay, and after a
    snapshot."""
    data_dir = tmp_path / "data"
    app, api = reopen(data_dir)
    project = api.project("demo")
    task_type = api.task_type(project["id"], template="Review {{repo}} for {{topic}}",
                              duplicateHandling="ignore", retryDelaySeconds=0)
    done = api.task(project["id"], typeId=task_type["id"], batchId="b1", priority=5,
                    variables={"repo": "r1", "topic": "auth"}, description="for people")
    api.next_task("ann", project["id"])
    api.post(f"/api/tasks/{done['id']}/fail", {"agentName": "ann", "error": "rate limited",
                                               "canRetry": True})
    api.next_task("bob", project["id"])
    api.post(f"/api/tasks/{done['id']}/complete", {
        "agentName": "bob", "result": {"score": 0, "ok": False, "note": ""},
        "outputs": [{"path": "a.md", "bytes": 12}, None, 1.5]})
    running = api.task(project["id"], instructions="with ü, \"quotes\" and\nlines", priority=4)
    api.next_task("cy", project["id"])
    untouched = [api.task(project["id"], typeId=task_type["id"], delaySeconds=600,
                          variables={"repo": "r2", "topic": "x"}, priority=-3),
                 api.task(project["id"], instructions="plain")]

    def every_task() -> list[dict]:
        listed = api.get(f"/api/projects/{project['id']}/tasks?limit=100").get_json()["data"]
        read = [api.get(f"/api/tasks/{t['id']}").get_json()["data"] for t in listed]
        detail = {"dependencies": [], "dependencyBatch": None, "dependents": []}
        assert read == [{**task, **detail} for task in listed]  # a read adds its dependencies
        return listed

    in_memory = every_task()
    assert in_memory[2:] == untouched  # as answered when created
    completed = in_memory[0]
    assert (completed["status"], completed["description"], completed["batchId"]) == \
        ("completed", "for people", "b1")
    assert completed["result"] == {"score": 0, "ok": False, "note": ""}
    assert completed["outputs"] == [{"path": "a.md", "bytes": 12}, None, 1.5]
    assert [(a["agentName"], a["status"], a["error"]) for a in completed["attempts"]] == \
        [("ann", "failed", "rate limited"), ("bob", "completed", None)]
    assert in_memory[1]["instructions"] == running["instructions"]
    assert (in_memory[1]["status"], in_memory[1]["assignedTo"]) == ("running", "cy")
    close_app(app)
    app, api = reopen(data_dir)  # from the journal
    assert every_task() == in_memory
    monkeypatch.setattr(journal, "MIN_COMPACT_BYTES", 1)
    extra = api.task(project["id"])  # a write to the project's store: it compacts
    api.delete(f"/api/tasks/{extra['id']}")
    close_app(app)
    app, api = reopen(data_dir)  # from a snapshot
    assert journal_generations(data_dir / "projects" / project["id"]) != [1]
    assert every_task() == in_memory
    close_app(app)


def journal_generations(store_dir: Path) -> list[int]:
    return [int(p.name.split(".")[1]) for p in store_dir.glob("journal.*.jsonl")]


def test_a_write_appends_only_what_changed(tmp_path: Path) -> None:
    """One task write costs the same bytes at 10 tasks as at 3,000: no project rewrite."""
    data_dir = tmp_path / "data"
    app, api = reopen(data_dir)
    project = api.project("demo")
    store_dir = data_dir / "projects" / project["id"]

    def bytes_written_by_one_create() -> int:
        before = sum(p.stat().st_size for p in store_dir.iterdir())
        api.task(project["id"], instructions="measure me")
        return sum(p.stat().st_size for p in store_dir.iterdir()) - before

    small = bytes_written_by_one_create()
    api.post(f"/api/projects/{project['id']}/tasks/bulk",
             {"tasks": [{"instructions": f"filler {i}"} for i in range(1000)]})
    for _ in range(2):
        api.post(f"/api/projects/{project['id']}/tasks/bulk",
                 {"tasks": [{"instructions": f"more {i}"} for i in range(1000)]})
    snapshot_before = (store_dir / "snapshot.json").stat().st_mtime_ns
    large = bytes_written_by_one_create()
    assert (store_dir / "snapshot.json").stat().st_mtime_ns == snapshot_before
    assert 0 < small < 2000 and abs(large - small) < 50
    close_app(app)


def project_on_disk(data_dir: Path, name: str) -> dict:
    """Create a project through the API, then let go of the data directory."""
    app, api = reopen(data_dir)
    project = api.project(name)
    close_app(app)
    return project


def spawn_writer(data_dir: Path, project_id: str, *args: str) -> subprocess.Popen[str]:
    """Start `storage_worker.py` in its own process; it prints each acknowledged id."""
    return subprocess.Popen([sys.executable, str(WORKER), str(data_dir), project_id, *args],
                            stdout=subprocess.PIPE, text=True)


def test_a_forked_child_waits_for_the_lock_its_parent_holds(tmp_path: Path) -> None:
    """flock locks belong to the open file description, which fork shares: a child using its
    parent's descriptor would "get" a lock the parent holds. The store's lock reopens its
    file in a child, so the child waits until the parent lets go."""
    lock = ProcessLock(tmp_path / "store.lock")
    lock.acquire()  # the parent's descriptor, inherited by the child below
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report when it got the lock, then leave at once
        try:
            lock.acquire()
            os.write(write_end, repr(time.monotonic()).encode())
        finally:
            os._exit(0)
    try:
        time.sleep(1.0)  # the child is waiting on the lock meanwhile
        released_at = time.monotonic()
        lock.release()
        _, status = os.waitpid(child, 0)
        got_it_at = float(os.read(read_end, 64))
    finally:
        os.close(read_end)
        os.close(write_end)
        lock.close()
    assert os.WEXITSTATUS(status) == 0
    assert got_it_at >= released_at


def test_concurrent_creators_across_processes_lose_nothing(tmp_path: Path) -> None:
    """20 creators (7 + 7 + 6 threads in 3 processes) write one project and the index."""
    data_dir = tmp_path / "data"
    project = project_on_disk(data_dir, "shared")
    per_thread = 15
    processes = [spawn_writer(data_dir, project["id"], "threads", str(n), str(per_thread))
                 for n in (7, 7, 6)]
    acknowledged: list[str] = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        acknowledged += out.split()
    assert len(acknowledged) == 20 * (per_thread + 1)
    app, api = reopen(data_dir)
    tasks = all_task_ids(api, project["id"])
    projects = [p["id"] for p in api.get("/api/projects?status=all").get_json()["data"]]
    assert set(tasks) | set(projects) == set(acknowledged) | {project["id"]}
    assert len(tasks) == 20 * per_thread == len(set(tasks))
    assert len(projects) == 21
    close_app(app)


def test_kill_9_in_a_loop_of_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    project = project_on_disk(data_dir, "crash")
    acknowledged: list[str] = []
    rng = random.Random(7)
    for _ in range(12):
        writer = spawn_writer(data_dir, project["id"], "write-forever")
        assert writer.stdout is not None
        first = writer.stdout.readline()  # wait until it is really writing
        assert first.strip() and not first.startswith("ERROR"), first
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(writer.pid, signal.SIGKILL)
        out, _ = writer.communicate()
        lines = [first.strip(), *out.split()]
        assert not any(line.startswith("ERROR") for line in lines)
        acknowledged += lines
        app, api = reopen(data_dir)  # storage must load after every kill
        stored = all_task_ids(api, project["id"])
        close_app(app)
        missing = set(acknowledged) - set(stored)
        assert not missing, f"{len(missing)} acknowledged writes lost"
        assert len(stored) == len(set(stored))
    assert len(acknowledged) > 100


def test_a_reader_follows_another_writers_compaction(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that was caught up adopts a new snapshot without re-reading it."""
    monkeypatch.setattr(journal, "MIN_COMPACT_BYTES", 3000)
    full_loads: list[Path] = []
    original = journal.JournaledStore._load_snapshot

    def counting(self, path, sig):  # type: ignore[no-untyped-def]
        full_loads.append(path)
        return original(self, path, sig)

    monkeypatch.setattr(journal.JournaledStore, "_load_snapshot", counting)
    data_dir = tmp_path / "data"
    writer_app, writer = reopen(data_dir)
    reader_app, reader = reopen(data_dir)
    project = writer.project("demo")
    store_dir = data_dir / "projects" / project["id"]
    ids = []
    for _ in range(40):
        ids.append(writer.task(project["id"], instructions="z" * 300)["id"])
        assert all_task_ids(reader, project["id"]) == ids  # the reader keeps up
    assert max(journal_generations(store_dir)) > 3
    reader_loads = [p for p in full_loads if p.parent == store_dir]
    assert len(reader_loads) == 2  # one first load per process, none after compactions
    # A reader that fell behind by two generations must reload, and still sees everything.
    for _ in range(30):
        ids.append(writer.task(project["id"], instructions="z" * 300)["id"])
    assert all_task_ids(reader, project["id"]) == ids
    close_app(writer_app)
    close_app(reader_app)


def test_reads_do_not_reread_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a process holds a project, reading a task, the project or a page loads nothing."""
    loads: list[Path] = []
    original = journal.JournaledStore._load_snapshot

    def counting(self, path, sig):  # type: ignore[no-untyped-def]
        loads.append(path)
        return original(self, path, sig)

    data_dir = tmp_path / "data"
    app, api = reopen(data_dir)
    project = api.project("demo")
    api.post(f"/api/projects/{project['id']}/tasks/bulk",
             {"tasks": [{"instructions": str(i)} for i in range(500)]})
    task_id = all_task_ids(api, project["id"])[250]
    monkeypatch.setattr(journal.JournaledStore, "_load_snapshot", counting)
    for _ in range(20):
        assert api.get(f"/api/tasks/{task_id}").status_code == 200
        assert api.get(f"/api/projects/{project['id']}").status_code == 200
        assert api.get(f"/api/projects/{project['id']}/tasks?limit=10&offset=100"
                       ).status_code == 200
    assert loads == []
    close_app(app)


class StalledFsync:
    """os.fsync, except that the first call from a thread named `stalled` waits until
    released: a disk slow to sync one request's write."""

    def __init__(self) -> None:
        self.real = os.fsync
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.calls: list[str] = []

    def __call__(self, fd: int) -> None:
        me = threading.current_thread().name
        self.calls.append(me)
        if me == "stalled" and not self.stalled.is_set():
            self.stalled.set()
            assert self.release.wait(60), "never released"
        self.real(fd)


def test_a_write_waiting_for_its_fsync_holds_no_lock_and_answers_only_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit: a write's line goes to the journal under the project's lock, its fsync
    runs after the lock is let go. While one create waits for its fsync, another create in
    the same project is written, synced and answered; the first answers only once its own
    fsync returns, and both tasks are there after a restart."""
    data_dir = tmp_path / "data"
    app, api = reopen(data_dir)
    project = api.project("demo")
    fsync = StalledFsync()
    monkeypatch.setattr(journal.os, "fsync", fsync)
    answers: dict[str, int] = {}

    def create(name: str) -> None:
        client = Api(app.test_client())
        answers[name] = client.post(f"/api/projects/{project['id']}/tasks",
                                    {"instructions": name}).status_code

    first = threading.Thread(target=create, args=("first",), name="stalled")
    first.start()
    try:
        assert fsync.stalled.wait(60), "the first create never reached its fsync"
        second = threading.Thread(target=create, args=("second",), name="second")
        second.start()
        second.join(60)
        assert not second.is_alive(), "the second create waited for the first one's fsync"
        assert answers == {"second": 201}  # the first has not answered: not yet on disk
    finally:
        fsync.release.set()
        first.join(60)
    assert answers == {"second": 201, "first": 201}
    monkeypatch.undo()
    close_app(app)
    app, api = reopen(data_dir)
    tasks = api.get(f"/api/projects/{project['id']}/tasks").get_json()["data"]
    assert sorted(t["instructions"] for t in tasks) == ["first", "second"]
    close_app(app)


def test_a_read_answers_only_once_what_it_saw_is_on_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read that sees a write whose fsync has not returned yet syncs the journal itself
    before answering; a read of what is known to be on disk syncs nothing."""
    app, api = reopen(tmp_path / "data")
    project = api.project("demo")
    fsync = StalledFsync()
    monkeypatch.setattr(journal.os, "fsync", fsync)
    writer = threading.Thread(name="stalled", target=lambda: Api(app.test_client()).post(
        f"/api/projects/{project['id']}/tasks", {"instructions": "pending"}))
    writer.start()
    try:
        assert fsync.stalled.wait(60)
        calls_before = len(fsync.calls)
        listed = api.get(f"/api/projects/{project['id']}/tasks").get_json()["data"]
        assert [t["instructions"] for t in listed] == ["pending"]
        assert fsync.calls[calls_before:] == ["MainThread"]  # synced before answering
        calls_before = len(fsync.calls)
        assert api.get(f"/api/projects/{project['id']}/tasks").status_code == 200
        assert fsync.calls[calls_before:] == []  # known to be on disk now
    finally:
        fsync.release.set()
        writer.join(60)
    close_app(app)


def test_a_commit_that_cannot_be_written_leaves_no_trace(tmp_path: Path) -> None:
    """If the journal refuses a transaction, this process forgets it too (no phantom state)."""
    from dataclasses import replace

    from taskdriver.errors import StorageError
    from taskdriver.storage import FileStorage

    data_dir = tmp_path / "data"
    app, api = reopen(data_dir)
    project = api.project("demo")
    task_id = api.task(project["id"])["id"]
    close_app(app)
    storage = FileStorage(data_dir)
    with pytest.raises(StorageError), storage.project_tx(project["id"]) as tx:
        task = tx.get_task(task_id)
        assert task is not None
        tx.put_task(replace(task, result=2**70))  # beyond what the journal can encode
    with storage.project_tx(project["id"], write=False) as tx:
        task = tx.get_task(task_id)
        assert task is not None and task.result is None
    storage.close()


def test_a_watch_wakes_when_its_files_cannot_be_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `stat` that fails (not only a missing file) wakes the waiter to look again: the
    watcher thread neither dies of it nor sleeps through it."""
    from taskdriver.storage import FileStorage

    storage = FileStorage(tmp_path / "data")
    project = Project(id=str(uuid.uuid4()), name="p", description="", instructions="",
                      status=ProjectStatus.ACTIVE, config=ProjectConfig(), created_at=0.0,
                      updated_at=0.0)
    with storage.global_tx() as tx:
        tx.put_project(project)
    watch = storage.watch(project.id)
    assert watch.wait(0.1) is False

    def refuse(path: object, *args: object, **kwargs: object) -> os.stat_result:
        raise PermissionError(13, "Permission denied", str(path))

    with monkeypatch.context() as patched:
        patched.setattr(journal.os, "stat", refuse)
        assert watch.wait(5) is True
    assert watch.wait(5) is True  # readable again: a change too, so it looks once more
    storage.close()


def test_recent_activity_survives_a_restart_from_a_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Completions read back from a snapshot (in queue order, not time order) still count."""
    from conftest import Clock

    monkeypatch.setattr(journal, "MIN_COMPACT_BYTES", 1)
    clock = Clock()
    data_dir = tmp_path / "data"
    app = make_app(data_dir, clock)
    api = Api(app.test_client())
    project = api.project("demo")
    ids = [api.task(project["id"])["id"] for _ in range(3)]
    for agent in ("a", "b", "c"):
        api.next_task(agent, project["id"])
    leases = list(zip("abc", ids, strict=True))  # agent a holds the oldest task
    for agent, task_id in reversed(leases):  # completed 10, 20, 30 s after leasing
        clock.advance(10)
        api.post(f"/api/tasks/{task_id}/complete", {"agentName": agent})
    # A write larger than the snapshot: the journal outgrows it, so everything is compacted
    # into a snapshot, which lists tasks in queue order.
    api.task(project["id"], instructions="x" * 100_000)
    store_dir = data_dir / "projects" / project["id"]
    [generation] = journal_generations(store_dir)
    assert generation > 1 and (store_dir / f"journal.{generation}.jsonl").stat().st_size == 0
    close_app(app)
    restarted = make_app(data_dir, clock)
    stats = Api(restarted.test_client()).get(
        f"/api/projects/{project['id']}/stats").get_json()["data"]["recentActivity"]
    assert stats == {"tasksCompletedLastHour": 3, "tasksFailedLastHour": 0,
                     "averageTaskDuration": 20.0}
    close_app(restarted)


def test_a_failing_disk_gives_503_keeps_nothing_half_stored_and_recovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "data"
    app, api = reopen(data_dir)
    project = api.project("disk")
    kept = api.task(project["id"], instructions="before")
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        if len(data) > 40:  # a journal line: part of it lands, then the disk is full
            real_write(fd, bytes(data[:20]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal.os, "write", half_then_full)
    for _ in range(3):
        response = api.post(f"/api/projects/{project['id']}/tasks", {"instructions": "lost"})
        assert response.status_code == 503, response.get_json()
        body = response.get_json()
        assert body["success"] is False and "cannot write storage" in body["error"]
    monkeypatch.undo()  # space returns
    after = api.task(project["id"], instructions="after")
    assert [t["instructions"] for t in api.get(
        f"/api/projects/{project['id']}/tasks").get_json()["data"]] == ["before", "after"]
    close_app(app)
    app, api = reopen(data_dir)
    assert all_task_ids(api, project["id"]) == [kept["id"], after["id"]]
    close_app(app)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KB tmpfs, unmounted afterwards (needs root and permission to mount)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)],
            capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root and mount permission")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_gives_503_until_space_returns(tiny_disk: Path) -> None:
    data_dir = tiny_disk / "data"
    app, api = reopen(data_dir)
    project = api.project("full")
    ballast = tiny_disk / "ballast"
    ballast.write_bytes(b"\0" * 128 * 1024)
    acknowledged: list[str] = []
    statuses: set[int] = set()
    for _ in range(400):
        response = api.post(f"/api/projects/{project['id']}/tasks/bulk",
                            {"tasks": [{"instructions": "x" * 200}] * 10})
        statuses.add(response.status_code)
        if response.status_code != 201:
            break
        acknowledged += [t["id"] for t in response.get_json()["data"]["createdTasks"]]
    assert statuses == {201, 503}, statuses
    again = api.post(f"/api/projects/{project['id']}/tasks/bulk",
                     {"tasks": [{"instructions": "x" * 200}] * 10})
    assert again.status_code == 503 and again.get_json()["success"] is False
    ballast.unlink()  # space returns: writes work again without a restart
    more = api.post(f"/api/projects/{project['id']}/tasks", {"instructions": "again"})
    assert more.status_code == 201
    acknowledged.append(more.get_json()["data"]["id"])
    assert api.as_token(None).get("/health").status_code == 200
    close_app(app)
    app, api = reopen(data_dir)
    assert all_task_ids(api, project["id"]) == acknowledged
    close_app(app)


def loaded_projects(app) -> set[str]:
    """The projects whose records this process holds in memory."""
    storage = app.extensions["taskdriver"].driver.storage
    return {project_id for project_id, store in storage._stores.items()
            if store.holds(lambda state: True)}


def test_a_task_route_loads_only_its_own_project(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app, api = reopen(data_dir)
    projects = [api.project(f"p{i}")["id"] for i in range(30)]
    tasks = {}
    for project_id in projects:
        created = api.post(f"/api/projects/{project_id}/tasks/bulk",
                           {"tasks": [{"instructions": "x"}] * 20}).get_json()["data"]
        tasks[project_id] = created["createdTasks"][0]["id"]
    close_app(app)
    target = projects[17]
    app, api = reopen(data_dir)  # a cold worker
    assert api.get(f"/api/tasks/{tasks[target]}").status_code == 200
    assert loaded_projects(app) == {target}
    api.post("/api/agents/w/next-task", {"projectId": target})
    assert api.post(f"/api/tasks/{tasks[target]}/complete", {"agentName": "w"}
                    ).status_code == 200
    assert api.get(f"/api/tasks/{uuid.uuid4()}").status_code == 404  # an unknown id
    assert loaded_projects(app) == {target}
    close_app(app)


def test_new_ids_are_version_4_uuids_starting_like_their_projects() -> None:
    project_id = str(uuid.uuid4())
    ids = new_ids_within(project_id, 10_000)
    assert len(set(ids)) == 10_000
    for record_id in [*ids, new_id_within(project_id)]:
        parsed = uuid.UUID(record_id)
        assert str(parsed) == record_id and record_id[:8] == project_id[:8]
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_projects_from_before_owner_prefixed_ids_are_still_searched(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    app, api = reopen(data_dir)
    storage = app.extensions["taskdriver"].driver.storage
    now = time.time()
    legacy = Project(id=str(uuid.uuid4()), name="legacy", description="", instructions="",
                     status=ProjectStatus.ACTIVE, config=ProjectConfig(), created_at=now,
                     updated_at=now)  # owner_prefixed_ids defaults to False, as stored then
    with storage.global_tx() as tx:
        tx.put_project(legacy)
    task = Task(id=str(uuid.uuid4()), project_id=legacy.id, seq=1, type_id=None,
                instructions="old", variables={}, batch_id=None, status=TaskStatus.QUEUED,
                max_retries=3, created_at=now, updated_at=now)
    with storage.project_tx(legacy.id) as ptx:
        ptx.put_task(task)
    api.project("modern")
    close_app(app)
    app, api = reopen(data_dir)
    found = api.get(f"/api/tasks/{task.id}")
    assert found.status_code == 200 and found.get_json()["data"]["instructions"] == "old"
    close_app(app)
