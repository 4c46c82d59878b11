-- Fleet controls (issue 22): what claims of paused, limited and rate-limited task types read.
-- * td_tasks_ready_by_type: the head of one type's due queue, so a claim that passes over
--   a paused or full type takes one step per type, not one per task passed;
-- * td_tasks_running_by_type: a type's running tasks counted from the index (as many as
--   its limit allows), never from a scan of its queue;
-- * td_lease_starts: when leases of rate-limited types began, shared by every host.
CREATE INDEX IF NOT EXISTS td_tasks_ready_by_type
    ON td_tasks (project_id, type_id, priority DESC, seq) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS td_tasks_running_by_type
    ON td_tasks (type_id) WHERE status = 'running';

CREATE TABLE IF NOT EXISTS td_lease_starts (
    type_id     text NOT NULL REFERENCES td_task_types (id) ON DELETE CASCADE,
    started_at  double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS td_lease_starts_by_type ON td_lease_starts (type_id, started_at);
