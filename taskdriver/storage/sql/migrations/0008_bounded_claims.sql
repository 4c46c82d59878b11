-- Bounded claims (issue 22): with one type at its maxConcurrent, a claim costs one index
-- probe per type however deep the queue.
-- * td_tasks_ready_by_type is keyed by the type alone: a type belongs to one project (its
--   id is unique across projects), so the head of its due queue is the first entry under
--   its id, found without the project;
-- * td_tasks_ready_untyped: the head of the tasks with no type, one more probe, among
--   those tasks only (the by-type index holds none of them);
-- * td_tasks_waiting_by_type: a type's waiting tasks (dependencies), so "is this type in
--   use" asks each status's own index for one row (queued: td_tasks_ready_by_type,
--   running: td_tasks_running_by_type) and stops at the first, and td_tasks_active_type,
--   which served it, goes.

DROP INDEX IF EXISTS td_tasks_ready_by_type;
CREATE INDEX IF NOT EXISTS td_tasks_ready_by_type ON td_tasks (type_id, priority DESC, seq)
    WHERE status = 'queued' AND type_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS td_tasks_ready_untyped ON td_tasks (project_id, priority DESC, seq)
    WHERE status = 'queued' AND type_id IS NULL;
CREATE INDEX IF NOT EXISTS td_tasks_waiting_by_type ON td_tasks (type_id, seq)
    WHERE status = 'waiting';
DROP INDEX IF EXISTS td_tasks_active_type;
