-- The archive's named queries (migration 0007), loaded beside queries.sql.

-- name: finished_before
-- Live tasks finished before a moment in the given statuses, oldest first, locked; those
-- another transaction holds are passed over.
SELECT data FROM td_tasks
WHERE project_id = %(project_id)s AND status = ANY(%(statuses)s)
  AND coalesce(completed_at, updated_at) < %(before)s
ORDER BY seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED;

-- name: add_archive_segment
-- Register a segment of a project's archive.
INSERT INTO td_archive_segments (id, project_id, archived_at, data)
VALUES (%(id)s, %(project_id)s, %(archived_at)s, %(data)s);

-- name: archive_tasks
-- Move tasks from the live table into a segment, in one statement (the live counts'
-- delete trigger takes them off the live counts).
WITH moved AS (
    DELETE FROM td_tasks WHERE project_id = %(project_id)s AND id = ANY(%(ids)s)
    RETURNING id, project_id, seq, status, type_id, batch_id, assigned_to, data)
INSERT INTO td_archived_tasks (id, project_id, segment_id, seq, status, type_id, batch_id,
                               assigned_to, data)
SELECT id, project_id, %(segment_id)s, seq, status, type_id, batch_id, assigned_to, data
FROM moved;

-- name: archive_segments
-- A project's archive segments, oldest first.
SELECT data FROM td_archive_segments WHERE project_id = %(project_id)s ORDER BY id;

-- name: get_archived_task
-- One archived task of a project.
SELECT data FROM td_archived_tasks WHERE id = %(id)s AND project_id = %(project_id)s;

-- name: list_archived
-- One page of a project's archived tasks, oldest segment first and by seq within it.
SELECT data FROM td_archived_tasks
WHERE project_id = %(project_id)s
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(assigned_to)s::text IS NULL OR assigned_to = %(assigned_to)s)
  AND (%(batch_id)s::text IS NULL OR batch_id = %(batch_id)s)
  AND (%(type_id)s::text IS NULL OR type_id = %(type_id)s)
  AND (%(batch_contains)s::text IS NULL
       OR strpos(lower(batch_id), lower(%(batch_contains)s::text)) > 0)
  AND (%(agent_contains)s::text IS NULL
       OR strpos(lower(assigned_to), lower(%(agent_contains)s::text)) > 0)
  AND (%(text)s::text IS NULL
       OR strpos(lower(data->>'instructions'), lower(%(text)s::text)) > 0
       OR strpos(lower(coalesce(data->>'result', '')), lower(%(text)s::text)) > 0)
ORDER BY segment_id, seq LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_archived
-- How many of a project's archived tasks pass the same filters.
SELECT count(*) FROM td_archived_tasks
WHERE project_id = %(project_id)s
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(assigned_to)s::text IS NULL OR assigned_to = %(assigned_to)s)
  AND (%(batch_id)s::text IS NULL OR batch_id = %(batch_id)s)
  AND (%(type_id)s::text IS NULL OR type_id = %(type_id)s)
  AND (%(batch_contains)s::text IS NULL
       OR strpos(lower(batch_id), lower(%(batch_contains)s::text)) > 0)
  AND (%(agent_contains)s::text IS NULL
       OR strpos(lower(assigned_to), lower(%(agent_contains)s::text)) > 0)
  AND (%(text)s::text IS NULL
       OR strpos(lower(data->>'instructions'), lower(%(text)s::text)) > 0
       OR strpos(lower(coalesce(data->>'result', '')), lower(%(text)s::text)) > 0);

-- name: delete_archive_segment
-- Delete one whole segment of a project's archive (its tasks go by cascade).
DELETE FROM td_archive_segments WHERE id = %(id)s AND project_id = %(project_id)s;
