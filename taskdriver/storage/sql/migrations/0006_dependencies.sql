-- Dependencies (issue 23). What a task waits for is copied beside its JSON (fixed at its
-- creation), so that finishing a task finds its own dependents by index: a GIN index from a
-- task id to the tasks whose `depends_on` holds it, a btree from a batch id to the tasks
-- whose `depends_on_batch` names it. A task without dependencies stores NULLs (no entry).
-- Waiting tasks count as using their task type, like queued and running ones.

ALTER TABLE td_tasks
    ADD COLUMN IF NOT EXISTS depends_on text[],
    ADD COLUMN IF NOT EXISTS depends_on_batch text;

CREATE INDEX IF NOT EXISTS td_tasks_depends_on ON td_tasks USING gin (depends_on)
    WHERE depends_on IS NOT NULL;
CREATE INDEX IF NOT EXISTS td_tasks_depends_on_batch
    ON td_tasks (project_id, depends_on_batch, seq) WHERE depends_on_batch IS NOT NULL;

DROP INDEX IF EXISTS td_tasks_active_type;
CREATE INDEX td_tasks_active_type
    ON td_tasks (type_id) WHERE status IN ('queued', 'running', 'waiting');
