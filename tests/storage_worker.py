"""A separate process that writes through the real app; used by the crash and concurrency tests.

    python storage_worker.py DATA_DIR PROJECT_ID MODE [ARG]

MODE `write-forever`: create tasks one at a time and print each acknowledged task id (flushed)
until killed. MODE `threads N COUNT`: N threads each create COUNT tasks and one project, then
print every acknowledged id. A small compaction threshold makes snapshots frequent, so kills
land during compaction too.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from taskdriver.storage import journal  # noqa: E402

journal.MIN_COMPACT_BYTES = 20_000

from conftest import Api, make_app  # noqa: E402


def write_forever(api: Api, project_id: str) -> None:
    number = 0
    while True:
        number += 1
        response = api.post(f"/api/projects/{project_id}/tasks",
                            {"instructions": f"task {number} " + "x" * 200})
        if response.status_code != 201:
            print(f"ERROR {response.status_code} {response.get_data(as_text=True)}", flush=True)
            continue
        print(response.get_json()["data"]["id"], flush=True)


def threads(api_for_thread, project_id: str, thread_count: int, count: int) -> None:
    acknowledged: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(thread_count)

    def creator(index: int) -> None:
        api = api_for_thread()
        start.wait()
        name = f"proc-{time.monotonic_ns()}-{index}"
        mine = [api.post("/api/projects", {"name": name}).get_json()["data"]["id"]]
        for number in range(count):
            response = api.post(f"/api/projects/{project_id}/tasks",
                                {"instructions": f"{name} {number}"})
            assert response.status_code == 201, response.get_json()
            mine.append(response.get_json()["data"]["id"])
        with lock:
            acknowledged.extend(mine)

    workers = [threading.Thread(target=creator, args=(i,)) for i in range(thread_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for record_id in acknowledged:
        print(record_id)


def main() -> None:
    data_dir, project_id, mode = sys.argv[1:4]
    app = make_app(Path(data_dir))
    if mode == "write-forever":
        write_forever(Api(app.test_client()), project_id)
    else:
        threads(lambda: Api(app.test_client()), project_id, int(sys.argv[4]),
                int(sys.argv[5]))


if __name__ == "__main__":
    main()
