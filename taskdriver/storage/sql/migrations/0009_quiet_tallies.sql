-- Quiet tallies (issue 21): the status counts cost more than the writes they follow.
-- * A task that changes status or batch is counted by a row trigger, fired only when one
--   of them changes (its WHEN is checked without calling any function): two additions to
--   this connection's count rows. The statement trigger it replaces captured every
--   updated row into transition tables, joined them and passed the moves through JSON,
--   for every update of a task, a lease extended or a progress report included; and
--   that join grew with the square of the rows one statement updated.
-- * `put_task` is an upsert, which fires the INSERT statement trigger too: over no rows
--   when the task existed. A statement trigger that captured no rows now returns before
--   calling `td_add_moves`. Bulk inserts and deletes keep the statement triggers.
DROP TRIGGER td_tasks_tally_update ON td_tasks;

CREATE FUNCTION td_tally_move() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    writer_shard integer := pg_backend_pid() % 64;  -- this connection's rows, as td_add_moves
BEGIN
    IF OLD.status <> NEW.status THEN
        INSERT INTO td_task_counts AS c (project_id, status, shard, count)
        VALUES (NEW.project_id, OLD.status, writer_shard, -1),
               (NEW.project_id, NEW.status, writer_shard, 1)
        ON CONFLICT (project_id, status, shard) DO UPDATE SET count = c.count + EXCLUDED.count;
    END IF;
    INSERT INTO td_batch_counts AS c (project_id, batch_id, status, shard, count)
    SELECT NEW.project_id, moved.batch_id, moved.status, writer_shard, moved.delta
    FROM (VALUES (OLD.batch_id, OLD.status, -1), (NEW.batch_id, NEW.status, 1))
         AS moved (batch_id, status, delta)
    WHERE moved.batch_id IS NOT NULL
    ON CONFLICT (project_id, batch_id, status, shard) DO UPDATE SET count = c.count + EXCLUDED.count;
    RETURN NULL;
END $$;

CREATE TRIGGER td_tasks_tally_move AFTER UPDATE OF status, batch_id ON td_tasks
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.batch_id IS DISTINCT FROM NEW.batch_id)
    EXECUTE FUNCTION td_tally_move();

CREATE OR REPLACE FUNCTION td_tally_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moves jsonb;  -- NULL: the statement captured no rows (jsonb_agg of nothing)
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_agg(jsonb_build_object(
            'project_id', project_id, 'batch_id', batch_id, 'status', status, 'delta', 1))
        INTO moves FROM new_rows;
    ELSE
        SELECT jsonb_agg(jsonb_build_object(
            'project_id', project_id, 'batch_id', batch_id, 'status', status, 'delta', -1))
        INTO moves FROM old_rows;
    END IF;
    IF moves IS NOT NULL THEN
        PERFORM td_add_moves(moves);
    END IF;
    RETURN NULL;
END $$;
