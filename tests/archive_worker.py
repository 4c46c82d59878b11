"""A separate process that archives through the real app, over and over, until killed; used
by the archive's crash test.

    python archive_worker.py DATA_DIR [STORAGE_URL]

Chunks of 10 tasks make many segments (so a kill lands between a segment's write and its
commit often), and a small compaction threshold makes snapshots frequent too. Prints
`ready` once the app is up, then the tasks each round moved (flushed).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from taskdriver import archiving  # noqa: E402
from taskdriver.extension import services  # noqa: E402
from taskdriver.storage import journal  # noqa: E402

journal.MIN_COMPACT_BYTES = 20_000
archiving.ARCHIVE_CHUNK = 10

from conftest import make_app  # noqa: E402


def main() -> None:
    data_dir, *url = sys.argv[1:]
    app = make_app(Path(data_dir), **({"TASKDRIVER_STORAGE_URL": url[0]} if url else {}))
    with app.app_context():
        driver = services().driver
        print("ready", flush=True)
        while True:
            moved = sum(run.archived for run in driver.archive(None, older_than_days=0))
            print(moved, flush=True)


if __name__ == "__main__":
    main()
