-- Claims and task writes lock only their task; what the project's row lock used to
-- protect is kept by the database itself:
-- * one running task per agent per project: a unique partial index (td_tasks_one_lease);
-- * no two live tasks created with the same unique duplicate key: `unique_key` (set only
--   for a task created under a type that refuses or ignores duplicates, cleared when the
--   task fails or its key changes) under a unique index, written with ON CONFLICT;
-- * queue positions: a sequence, not max(seq) + 1;
-- * counts by status, per project and per batch, kept by statement triggers in one row per
--   (…, status, shard), the shard being the writing connection's: concurrent writers of one
--   project add to different rows, so a count never queues them behind each other.
-- `lease_expires_at` is copied beside the JSON so the reaper finds lapsed leases by column.

ALTER TABLE td_tasks
    ADD COLUMN lease_expires_at double precision,
    ADD COLUMN unique_key text;
UPDATE td_tasks SET lease_expires_at = (data ->> 'lease_expires_at')::double precision
 WHERE status = 'running';

CREATE SEQUENCE td_task_seq;
SELECT setval('td_task_seq', coalesce(max(seq), 0) + 1, false) FROM td_tasks;

DROP INDEX IF EXISTS td_tasks_running;
CREATE UNIQUE INDEX td_tasks_one_lease ON td_tasks (project_id, assigned_to)
    WHERE status = 'running';
CREATE UNIQUE INDEX td_tasks_unique_key ON td_tasks (project_id, unique_key)
    WHERE unique_key IS NOT NULL;

DROP TRIGGER IF EXISTS td_tasks_count ON td_tasks;
DROP FUNCTION IF EXISTS td_count_tasks();
DROP TABLE td_task_counts;

CREATE TABLE td_task_counts (
    project_id  text NOT NULL REFERENCES td_projects (id) ON DELETE CASCADE,
    status      text NOT NULL,
    shard       integer NOT NULL,
    count       bigint NOT NULL,
    PRIMARY KEY (project_id, status, shard)
);

CREATE TABLE td_batch_counts (
    project_id  text NOT NULL REFERENCES td_projects (id) ON DELETE CASCADE,
    batch_id    text NOT NULL,
    status      text NOT NULL,
    shard       integer NOT NULL,
    count       bigint NOT NULL,
    PRIMARY KEY (project_id, batch_id, status, shard)
);

INSERT INTO td_task_counts (project_id, status, shard, count)
SELECT project_id, status, 0, count(*) FROM td_tasks GROUP BY project_id, status;
INSERT INTO td_batch_counts (project_id, batch_id, status, shard, count)
SELECT project_id, batch_id, status, 0, count(*) FROM td_tasks WHERE batch_id IS NOT NULL
GROUP BY project_id, batch_id, status;

-- Adds one statement's moves (-1 from a status, +1 to one) to the counts. A project being
-- deleted is skipped: its counts go with it (cascade).
CREATE FUNCTION td_add_moves(moves jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    WITH moved AS (
        SELECT m.project_id, m.batch_id, m.status, sum(m.delta) AS delta
        FROM jsonb_to_recordset(moves) AS m(project_id text, batch_id text, status text,
                                            delta bigint)
        WHERE EXISTS (SELECT 1 FROM td_projects p WHERE p.id = m.project_id)
        GROUP BY 1, 2, 3 HAVING sum(m.delta) <> 0
    ), by_project AS (
        INSERT INTO td_task_counts AS c (project_id, status, shard, count)
        SELECT project_id, status, pg_backend_pid() % 64, sum(delta) FROM moved
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (project_id, status, shard) DO UPDATE SET count = c.count + EXCLUDED.count
    )
    INSERT INTO td_batch_counts AS c (project_id, batch_id, status, shard, count)
    SELECT project_id, batch_id, status, pg_backend_pid() % 64, delta FROM moved
    WHERE batch_id IS NOT NULL ORDER BY 1, 2, 3
    ON CONFLICT (project_id, batch_id, status, shard) DO UPDATE SET count = c.count + EXCLUDED.count;
END $$;

CREATE FUNCTION td_tally_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM td_add_moves(coalesce(jsonb_agg(jsonb_build_object(
            'project_id', project_id, 'batch_id', batch_id, 'status', status, 'delta', 1)),
            '[]')) FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM td_add_moves(coalesce(jsonb_agg(jsonb_build_object(
            'project_id', project_id, 'batch_id', batch_id, 'status', status, 'delta', -1)),
            '[]')) FROM old_rows;
    ELSE
        PERFORM td_add_moves(coalesce(jsonb_agg(move), '[]')) FROM (
            SELECT jsonb_build_object('project_id', o.project_id, 'batch_id', o.batch_id,
                                      'status', o.status, 'delta', -1) AS move
            FROM old_rows o JOIN new_rows n USING (id)
            WHERE o.status <> n.status OR o.batch_id IS DISTINCT FROM n.batch_id
            UNION ALL
            SELECT jsonb_build_object('project_id', n.project_id, 'batch_id', n.batch_id,
                                      'status', n.status, 'delta', 1)
            FROM old_rows o JOIN new_rows n USING (id)
            WHERE o.status <> n.status OR o.batch_id IS DISTINCT FROM n.batch_id) AS moves;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER td_tasks_tally_insert AFTER INSERT ON td_tasks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION td_tally_tasks();
CREATE TRIGGER td_tasks_tally_update AFTER UPDATE ON td_tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION td_tally_tasks();
CREATE TRIGGER td_tasks_tally_delete AFTER DELETE ON td_tasks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION td_tally_tasks();
