-- The archive (issue 24): finished tasks leave td_tasks (and so the claim path, its
-- indexes and its kept counts) for td_archived_tasks, one chunk at a time. Each chunk is a
-- segment: a row of td_archive_segments with its counts (stats and batch progress add them
-- to the live counts), its tasks in td_archived_tasks, deleted whole (cascade) when the
-- project's deleteArchivedAfterDays has passed. Touches no table of 0005 or 0006.

CREATE TABLE td_archive_segments (
    id           text PRIMARY KEY,
    project_id   text NOT NULL REFERENCES td_projects (id) ON DELETE CASCADE,
    archived_at  double precision NOT NULL,
    data         jsonb NOT NULL
);

CREATE INDEX td_archive_segments_by_project ON td_archive_segments (project_id, id);

CREATE TABLE td_archived_tasks (
    id           text PRIMARY KEY,
    project_id   text NOT NULL,
    segment_id   text NOT NULL REFERENCES td_archive_segments (id) ON DELETE CASCADE,
    seq          bigint NOT NULL,
    status       text NOT NULL,
    type_id      text,
    batch_id     text,
    assigned_to  text,
    data         jsonb NOT NULL
);

CREATE INDEX td_archived_tasks_in_order ON td_archived_tasks (project_id, segment_id, seq);
CREATE INDEX td_archived_tasks_by_segment ON td_archived_tasks (segment_id);
