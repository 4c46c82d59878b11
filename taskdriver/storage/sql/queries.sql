-- Named queries of the PostgreSQL backend. Each starts with `-- name: <name>` and a line
-- saying what it is for; `postgres_sections.py` loads them by name.

-- name: lock_global
-- Serialize writers of projects, sessions and admin tokens (ends with the transaction).
SELECT pg_advisory_xact_lock(hashtext('taskdriver:global'));

-- name: lock_project
-- Keep every other writer out of one project (ends with the transaction); no row if the
-- project is gone.
SELECT pg_advisory_xact_lock(1954, hashtext(id)) FROM td_projects WHERE id = %(id)s;

-- name: share_project
-- Keep exclusive writers out of one project while letting other sharing writers in; with
-- the project's task types, which every claim and outcome reads (one round trip, not
-- two). They are read as of the statement's start: a type change that committed while
-- this waited for the lock applies from the next section on.
SELECT pg_advisory_xact_lock_shared(1954, hashtext(p.id)),
       (SELECT coalesce(json_agg(t.data ORDER BY t.position), '[]') FROM td_task_types t
        WHERE t.project_id = p.id)
FROM td_projects p WHERE p.id = %(id)s;

-- name: project_exists
-- Whether a project is there, for a reader.
SELECT id FROM td_projects WHERE id = %(id)s;

-- name: get_project
-- One project.
SELECT data FROM td_projects WHERE id = %(id)s;

-- name: project_by_name
-- The project with exactly this name.
SELECT data FROM td_projects WHERE name = %(name)s;

-- name: list_projects
-- Every project, oldest first.
SELECT data FROM td_projects ORDER BY position;

-- name: put_project
-- Create or replace a project.
INSERT INTO td_projects (id, name, data)
VALUES (%(id)s, %(name)s, %(data)s)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, data = EXCLUDED.data;

-- name: delete_project
-- Delete a project; its sessions, task types, tasks and counts go with it (cascade).
DELETE FROM td_projects WHERE id = %(id)s;

-- name: session_by_token_hash
-- The session a bearer token's hash belongs to.
SELECT data FROM td_sessions WHERE token_hash = %(token_hash)s;

-- name: session_with_project
-- The session a bearer token's hash belongs to, with its project (NULL: deleted).
SELECT s.data, p.data FROM td_sessions s LEFT JOIN td_projects p ON p.id = s.project_id
WHERE s.token_hash = %(token_hash)s;

-- name: put_session
-- Create or replace a session.
INSERT INTO td_sessions (id, token_hash, project_id, expires_at, data)
VALUES (%(id)s, %(token_hash)s, %(project_id)s, %(expires_at)s, %(data)s)
ON CONFLICT (id) DO UPDATE
    SET token_hash = EXCLUDED.token_hash, expires_at = EXCLUDED.expires_at, data = EXCLUDED.data;

-- name: delete_session
-- Delete a session.
DELETE FROM td_sessions WHERE id = %(id)s;

-- name: sessions
-- Every stored session.
SELECT data FROM td_sessions;

-- name: has_admin_token
-- Whether a minted operator token has this hash.
SELECT 1 FROM td_admin_tokens WHERE token_hash = %(token_hash)s;

-- name: add_admin_token
-- Remember a minted operator token's hash.
INSERT INTO td_admin_tokens (token_hash, created_at) VALUES (%(token_hash)s, %(created_at)s)
ON CONFLICT (token_hash) DO NOTHING;

-- name: admin_token_count
-- How many operator tokens were minted.
SELECT count(*) FROM td_admin_tokens;

-- name: get_task_type
-- One task type of a project.
SELECT data FROM td_task_types WHERE id = %(id)s AND project_id = %(project_id)s;

-- name: task_type_by_name
-- The task type with exactly this name in a project.
SELECT data FROM td_task_types WHERE project_id = %(project_id)s AND name = %(name)s;

-- name: list_task_types
-- A project's task types, oldest first.
SELECT data FROM td_task_types WHERE project_id = %(project_id)s ORDER BY position;

-- name: put_task_type
-- Create or replace a task type.
INSERT INTO td_task_types (id, project_id, name, data)
VALUES (%(id)s, %(project_id)s, %(name)s, %(data)s)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, data = EXCLUDED.data;

-- name: delete_task_type
-- Delete a task type.
DELETE FROM td_task_types WHERE id = %(id)s AND project_id = %(project_id)s;

-- name: task_type_in_use
-- Whether a queued, running or waiting task uses a task type: one probe of each status's
-- index (td_tasks_ready_by_type, td_tasks_running_by_type, td_tasks_waiting_by_type),
-- stopping at the first row found. The orders are the indexes' own: without them, a type
-- holding half the queue would be looked for by a scan of the table, which reads it all
-- whenever the type has no such task after all.
SELECT 1 FROM (
    (SELECT 1 FROM td_tasks WHERE type_id = %(type_id)s AND status = 'queued'
     ORDER BY priority DESC, seq LIMIT 1)
    UNION ALL
    (SELECT 1 FROM td_tasks WHERE type_id = %(type_id)s AND status = 'running' LIMIT 1)
    UNION ALL
    (SELECT 1 FROM td_tasks WHERE type_id = %(type_id)s AND status = 'waiting'
     ORDER BY seq LIMIT 1)
) AS found
LIMIT 1;

-- name: get_task
-- One task of a project.
SELECT data FROM td_tasks WHERE id = %(id)s AND project_id = %(project_id)s;

-- name: put_task
-- Create or replace a task (a replaced task keeps its seq, so its place in the queue, and
-- its unique key while it is live and its duplicate key stays).
INSERT INTO td_tasks (id, project_id, seq, status, type_id, batch_id, assigned_to,
                      duplicate_key, assigned_at, completed_at, lease_expires_at,
                      updated_at, priority, run_after, depends_on, depends_on_batch, data)
VALUES (%(id)s, %(project_id)s, %(seq)s, %(status)s, %(type_id)s, %(batch_id)s,
        %(assigned_to)s, %(duplicate_key)s, %(assigned_at)s, %(completed_at)s,
        %(lease_expires_at)s, %(updated_at)s, %(priority)s, %(run_after)s,
        string_to_array(%(depends_on)s::text, ','), %(depends_on_batch)s, %(data)s)
ON CONFLICT (id) DO UPDATE SET
    status = EXCLUDED.status, batch_id = EXCLUDED.batch_id,
    assigned_to = EXCLUDED.assigned_to, duplicate_key = EXCLUDED.duplicate_key,
    assigned_at = EXCLUDED.assigned_at, completed_at = EXCLUDED.completed_at,
    lease_expires_at = EXCLUDED.lease_expires_at,
    updated_at = EXCLUDED.updated_at, priority = EXCLUDED.priority,
    run_after = EXCLUDED.run_after, data = EXCLUDED.data,
    unique_key = CASE WHEN EXCLUDED.status = 'failed'
                        OR EXCLUDED.duplicate_key IS DISTINCT FROM td_tasks.duplicate_key
                      THEN NULL ELSE td_tasks.unique_key END;

-- name: put_tasks
-- Replace existing tasks in one statement (as many put_task would, unique keys alike).
UPDATE td_tasks AS t SET
    status = u.status, batch_id = u.batch_id, assigned_to = u.assigned_to,
    duplicate_key = u.duplicate_key, assigned_at = u.assigned_at,
    completed_at = u.completed_at, lease_expires_at = u.lease_expires_at,
    updated_at = u.updated_at, priority = u.priority, run_after = u.run_after,
    data = u.data::jsonb,
    unique_key = CASE WHEN u.status = 'failed'
                        OR u.duplicate_key IS DISTINCT FROM t.duplicate_key
                      THEN NULL ELSE t.unique_key END
FROM unnest(%(id)b::text[], %(status)b::text[], %(batch_id)b::text[],
            %(assigned_to)b::text[], %(duplicate_key)b::text[], %(assigned_at)b::float8[],
            %(completed_at)b::float8[], %(lease_expires_at)b::float8[],
            %(updated_at)b::float8[], %(priority)b::integer[], %(run_after)b::float8[],
            %(data)b::text[])
     AS u(id, status, batch_id, assigned_to, duplicate_key, assigned_at, completed_at,
          lease_expires_at, updated_at, priority, run_after, data)
WHERE t.id = u.id AND t.project_id = %(project_id)s;

-- name: add_tasks
-- Store new tasks, one row each as `PostgresProjectTx.add_tasks` writes them. COPY has no
-- ON CONFLICT: a task whose unique key a live task holds fails the statement with a
-- unique violation, which the section's caller turns into `Contention` (it looks again).
COPY td_tasks (id, project_id, seq, status, type_id, batch_id, assigned_to, duplicate_key,
               unique_key, assigned_at, completed_at, lease_expires_at, updated_at,
               priority, run_after, depends_on, depends_on_batch, data) FROM STDIN;

-- name: delete_task
-- Delete a task.
DELETE FROM td_tasks WHERE id = %(id)s AND project_id = %(project_id)s;

-- name: next_seqs
-- Queue positions after every one given so far, in increasing order (gaps allowed).
SELECT nextval('td_task_seq') FROM generate_series(1, %(count)s);

-- name: next_due
-- The task to hand out now: due, highest priority, oldest first (td_tasks_ready).
SELECT data FROM td_tasks
WHERE project_id = %(project_id)s AND status = 'queued'
  AND (run_after IS NULL OR run_after <= %(now)s)
ORDER BY priority DESC, seq LIMIT 1;

-- name: claim_next
-- `next_due`, locked for the claim; a task another transaction holds is passed over.
SELECT data FROM td_tasks
WHERE project_id = %(project_id)s AND status = 'queued'
  AND (run_after IS NULL OR run_after <= %(now)s)
ORDER BY priority DESC, seq LIMIT 1 FOR UPDATE SKIP LOCKED;

-- name: claim_next_excluding
-- `claim_next` passing over some types (paused, at their limit): the head of each other
-- type's due queue (td_tasks_ready_by_type, by the type alone: a type's tasks are all of
-- its project), untyped tasks as one more (td_tasks_ready_untyped), the best of them. Each
-- head is locked as it is found (those another transaction holds are passed over); the
-- heads not taken are let go when the transaction ends.
WITH eligible (type_id) AS (
    SELECT id FROM td_task_types
    WHERE project_id = %(project_id)s AND NOT (id = ANY (%(excluded)s))
), heads AS (
    SELECT head.id, head.priority, head.seq FROM eligible CROSS JOIN LATERAL (
        SELECT t.id, t.priority, t.seq FROM td_tasks t
        WHERE t.type_id = eligible.type_id AND t.status = 'queued'
          AND (t.run_after IS NULL OR t.run_after <= %(now)s)
        ORDER BY t.priority DESC, t.seq LIMIT 1 FOR UPDATE SKIP LOCKED) AS head
    UNION ALL
    SELECT * FROM (
        SELECT t.id, t.priority, t.seq FROM td_tasks t
        WHERE t.project_id = %(project_id)s AND t.status = 'queued' AND t.type_id IS NULL
          AND (t.run_after IS NULL OR t.run_after <= %(now)s)
        ORDER BY t.priority DESC, t.seq LIMIT 1 FOR UPDATE SKIP LOCKED) AS untyped
)
SELECT data FROM td_tasks
WHERE id = (SELECT id FROM heads ORDER BY priority DESC, seq LIMIT 1);

-- name: next_due_excluding
-- `next_due` passing over some types, as `claim_next_excluding` without locks.
SELECT data FROM td_tasks
WHERE project_id = %(project_id)s AND status = 'queued'
  AND (run_after IS NULL OR run_after <= %(now)s)
  AND (type_id IS NULL OR NOT (type_id = ANY (%(excluded)s)))
ORDER BY priority DESC, seq LIMIT 1;

-- name: lock_task_type
-- Hold a task type until the transaction ends: the claims of a controlled type take turns.
SELECT 1 FROM td_task_types WHERE id = %(type_id)s FOR NO KEY UPDATE;

-- name: running_of_type
-- A type's running tasks, from td_tasks_running_by_type.
SELECT count(*) FROM td_tasks WHERE type_id = %(type_id)s AND status = 'running';

-- name: lease_starts_since
-- Leases of a rate-limited type begun at or after a moment.
SELECT count(*) FROM td_lease_starts WHERE type_id = %(type_id)s AND started_at >= %(since)s;

-- name: record_lease_start
-- Note a lease start, and forget the type's starts no window reaches any more.
WITH forgotten AS (
    DELETE FROM td_lease_starts WHERE type_id = %(type_id)s AND started_at < %(before)s
)
INSERT INTO td_lease_starts (type_id, started_at) VALUES (%(type_id)s, %(at)s);

-- name: due_count_of_type
-- How many of a type's queued tasks are due (td_tasks_ready_by_type).
SELECT count(*) FROM td_tasks
WHERE project_id = %(project_id)s AND type_id = %(type_id)s AND status = 'queued'
  AND (run_after IS NULL OR run_after <= %(now)s);

-- name: lock_task
-- One task of a project, locked until the transaction ends (waits for another holder).
SELECT data FROM td_tasks WHERE id = %(id)s AND project_id = %(project_id)s FOR UPDATE;

-- name: expired_leases
-- Running tasks whose lease ran out, locked; those another transaction holds are passed
-- over (it is changing them).
SELECT data FROM td_tasks
WHERE project_id = %(project_id)s AND status = 'running' AND lease_expires_at <= %(now)s
ORDER BY seq FOR UPDATE SKIP LOCKED;

-- name: delayed_count
-- Queued tasks whose moment has not come (td_tasks_waiting).
SELECT count(*) FROM td_tasks
WHERE project_id = %(project_id)s AND status = 'queued' AND run_after > %(now)s;

-- name: next_run_after
-- When the soonest waiting task comes due.
SELECT min(run_after) FROM td_tasks
WHERE project_id = %(project_id)s AND status = 'queued' AND run_after > %(now)s;

-- name: running_tasks
-- Every running task of a project.
SELECT data FROM td_tasks WHERE project_id = %(project_id)s AND status = 'running'
ORDER BY seq;

-- name: held_and_expired
-- The running task leased to one agent (true), and as `expired_leases` (false).
SELECT true, data FROM td_tasks
WHERE project_id = %(project_id)s AND status = 'running' AND assigned_to = %(agent_name)s
UNION ALL
SELECT false, data FROM (
    SELECT data FROM td_tasks
    WHERE project_id = %(project_id)s AND status = 'running' AND lease_expires_at <= %(now)s
    ORDER BY seq FOR UPDATE SKIP LOCKED) AS expired;

-- name: find_duplicates
-- For each of these duplicate keys, the oldest task that is not failed.
SELECT DISTINCT ON (duplicate_key) data FROM td_tasks
WHERE project_id = %(project_id)s AND duplicate_key = ANY(%(keys)b::text[])
  AND status <> 'failed' AND duplicate_key IS NOT NULL
ORDER BY duplicate_key, seq;

-- name: dependent_ids
-- Ids of the tasks (any status) depending on these tasks or on these batches, through
-- td_tasks_depends_on and td_tasks_depends_on_batch.
SELECT id FROM td_tasks WHERE depends_on && %(task_ids)b::text[]
UNION
SELECT id FROM td_tasks WHERE project_id = %(project_id)s
   AND depends_on_batch = ANY(%(batch_ids)b::text[]);

-- name: lock_waiting
-- Those of these tasks still waiting, locked in id order (so two releases never
-- deadlock); a row another transaction holds is waited for, then looked at again as it
-- committed. The ids come as a parameter, which the planner hashes.
SELECT data FROM td_tasks
WHERE id = ANY(%(ids)b::text[]) AND project_id = %(project_id)s AND status = 'waiting'
ORDER BY id FOR UPDATE;

-- name: guard_batch_shared
-- A section finishing a task of a batch: keeps out creators of the batch's dependents.
SELECT pg_advisory_xact_lock_shared(1955, hashtext(%(project_id)s || '/' || %(batch_id)s));

-- name: guard_batch
-- A section creating a dependent of a batch: keeps out sections finishing its tasks.
SELECT pg_advisory_xact_lock(1955, hashtext(%(project_id)s || '/' || %(batch_id)s));

-- name: serialize_batch_release
-- One section at a time looks whether a batch finished, to release its dependents.
SELECT pg_advisory_xact_lock(1956, hashtext(%(project_id)s || '/' || %(batch_id)s));

-- name: dependents
-- Ids of the tasks (any status) depending on a task or on a batch, oldest first: each
-- side by its own index (td_tasks_depends_on, td_tasks_depends_on_batch). A task depends
-- only on tasks of its own project, and task ids are unique: the first side needs no
-- project (which the planner would read by td_tasks_by_batch, the whole project).
SELECT id FROM (
    SELECT id, seq FROM td_tasks WHERE depends_on @> ARRAY[%(task_id)s]::text[]
    UNION
    SELECT id, seq FROM td_tasks
    WHERE project_id = %(project_id)s AND depends_on_batch = %(batch_id)s) AS found
ORDER BY seq LIMIT %(limit)s;

-- name: status_counts
-- A project's task counts by status (kept by the td_tasks_tally triggers, one row a shard).
SELECT status, sum(count) FROM td_task_counts WHERE project_id = %(project_id)s
GROUP BY status;

-- name: batch_counts
-- One batch's task counts by status (kept alike).
SELECT status, sum(count) FROM td_batch_counts
WHERE project_id = %(project_id)s AND batch_id = %(batch_id)s GROUP BY status;

-- name: batch_ids
-- Every batch id of a project, in order of first use.
SELECT batch_id FROM td_tasks WHERE project_id = %(project_id)s AND batch_id IS NOT NULL
GROUP BY batch_id ORDER BY min(seq);

-- name: completed_since
-- Tasks completed at or after a moment, and the lease time they took in all.
SELECT count(*), coalesce(sum(completed_at - coalesce(assigned_at, completed_at)), 0)
FROM td_tasks
WHERE project_id = %(project_id)s AND status = 'completed' AND completed_at >= %(since)s;

-- name: completion_times
-- When tasks completed, at or after a moment, oldest first.
SELECT completed_at FROM td_tasks
WHERE project_id = %(project_id)s AND status = 'completed' AND completed_at >= %(since)s
ORDER BY completed_at;

-- name: failure_times
-- When tasks became failed, at or after a moment, oldest first.
SELECT updated_at FROM td_tasks
WHERE project_id = %(project_id)s AND status = 'failed' AND updated_at >= %(since)s
ORDER BY updated_at;

-- name: failed_since
-- Tasks that became failed at or after a moment.
SELECT count(*) FROM td_tasks
WHERE project_id = %(project_id)s AND status = 'failed' AND updated_at >= %(since)s;

-- name: notify_work
-- Tell every host's waiters that a project has a task to give (sent when the transaction
-- commits, and not at all if it rolls back).
SELECT pg_notify('taskdriver_work', %(project_id)s);

-- name: project_of_task
-- The project holding a task (most task routes start here: one lookup, not two).
SELECT p.data FROM td_tasks t JOIN td_projects p ON p.id = t.project_id WHERE t.id = %(id)s;

-- name: project_of_task_type
-- The project holding a task type.
SELECT p.data FROM td_task_types t JOIN td_projects p ON p.id = t.project_id
WHERE t.id = %(id)s;

-- name: touch_health
-- A write that proves the database accepts writes now.
INSERT INTO td_health (id, checked_at) VALUES (1, now())
ON CONFLICT (id) DO UPDATE SET checked_at = EXCLUDED.checked_at;

-- name: list_tasks
-- One page of a project's tasks, oldest first, each filter applied when given.
SELECT data FROM td_tasks
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
ORDER BY seq LIMIT %(limit)s OFFSET %(offset)s;

-- name: list_tasks_sorted
-- list_tasks in the order a person asked for (the dashboard's columns): %(sort)s is a
-- TaskSort value; those without a value for it last; ties oldest first. Text compares
-- byte-wise (COLLATE "C"), as the file backend's does.
SELECT data FROM td_tasks
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
ORDER BY
  CASE WHEN NOT %(descending)s::boolean THEN CASE %(sort)s::text
    WHEN 'status' THEN status WHEN 'agent' THEN assigned_to WHEN 'batch' THEN batch_id END
  END COLLATE "C" ASC NULLS LAST,
  CASE WHEN %(descending)s::boolean THEN CASE %(sort)s::text
    WHEN 'status' THEN status WHEN 'agent' THEN assigned_to WHEN 'batch' THEN batch_id END
  END COLLATE "C" DESC NULLS LAST,
  CASE WHEN NOT %(descending)s::boolean THEN CASE %(sort)s::text
    WHEN 'created' THEN seq::double precision WHEN 'priority' THEN priority
    WHEN 'updated' THEN updated_at END
  END ASC NULLS LAST,
  CASE WHEN %(descending)s::boolean THEN CASE %(sort)s::text
    WHEN 'created' THEN seq::double precision WHEN 'priority' THEN priority
    WHEN 'updated' THEN updated_at END
  END DESC NULLS LAST,
  seq
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_tasks
-- How many of a project's tasks pass the same filters.
SELECT count(*) FROM td_tasks
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

-- name: get_idempotency
-- The record kept under a key in one scope ('' global, else a project's id).
SELECT data FROM td_idempotency_keys WHERE scope = %(scope)s AND key = %(key)s;

-- name: put_idempotency
-- Keep a create's record under its key, replacing only the record the transaction read
-- there (`seen_at`: its created_at, NULL when it read none); no row when another
-- transaction stored one meanwhile.
INSERT INTO td_idempotency_keys AS k (scope, key, project_id, created_at, data)
VALUES (%(scope)s, %(key)s, %(project_id)s, %(created_at)s, %(data)s)
ON CONFLICT (scope, key) DO UPDATE
    SET created_at = EXCLUDED.created_at, data = EXCLUDED.data
    WHERE k.created_at = %(seen_at)s;

-- name: purge_idempotency
-- Forget a scope's keys older than the 24-hour window.
DELETE FROM td_idempotency_keys WHERE scope = %(scope)s AND created_at < %(before)s;
