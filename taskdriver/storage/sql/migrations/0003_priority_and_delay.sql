-- Priorities and delayed tasks: copies of the task's `priority` and `run_after` beside its
-- JSON, and indexes for the claim (due tasks, highest priority, oldest first) and for
-- counting and timing the tasks still waiting for their moment.

ALTER TABLE td_tasks
    ADD COLUMN priority integer NOT NULL DEFAULT 0,
    ADD COLUMN run_after double precision;

CREATE INDEX td_tasks_ready ON td_tasks (project_id, priority DESC, seq)
    WHERE status = 'queued';
CREATE INDEX td_tasks_waiting ON td_tasks (project_id, run_after)
    WHERE status = 'queued' AND run_after IS NOT NULL;
DROP INDEX IF EXISTS td_tasks_queued;
