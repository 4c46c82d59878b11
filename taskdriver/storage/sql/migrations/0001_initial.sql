-- TaskDriver's PostgreSQL schema as it stood before versioned migrations. Its statements
-- are idempotent, so a database created by a server of that time adopts it unchanged.
-- Applied in the schema the connection's search_path names first.
-- Records are kept whole as JSON in `data`; the columns beside it are copies that the
-- queue's queries filter and order by. Times are POSIX seconds, as the service gives them.

CREATE TABLE IF NOT EXISTS td_projects (
    id          text PRIMARY KEY,
    position    bigint GENERATED ALWAYS AS IDENTITY,  -- creation order, for listing
    name        text NOT NULL UNIQUE,
    data        jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS td_sessions (
    id          text PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE,
    project_id  text NOT NULL REFERENCES td_projects (id) ON DELETE CASCADE,
    expires_at  double precision NOT NULL,
    data        jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS td_admin_tokens (
    token_hash  text PRIMARY KEY,
    created_at  double precision NOT NULL
);

CREATE TABLE IF NOT EXISTS td_task_types (
    id          text PRIMARY KEY,
    position    bigint GENERATED ALWAYS AS IDENTITY,  -- creation order, for listing
    project_id  text NOT NULL REFERENCES td_projects (id) ON DELETE CASCADE,
    name        text NOT NULL,
    data        jsonb NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE IF NOT EXISTS td_tasks (
    id             text PRIMARY KEY,
    project_id     text NOT NULL REFERENCES td_projects (id) ON DELETE CASCADE,
    seq            bigint NOT NULL,
    status         text NOT NULL,
    type_id        text,
    batch_id       text,
    assigned_to    text,
    duplicate_key  text,
    assigned_at    double precision,
    completed_at   double precision,
    updated_at     double precision NOT NULL,
    data           jsonb NOT NULL
);

CREATE INDEX IF NOT EXISTS td_tasks_by_seq ON td_tasks (project_id, seq);
CREATE INDEX IF NOT EXISTS td_tasks_queued ON td_tasks (project_id, seq) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS td_tasks_running
    ON td_tasks (project_id, assigned_to) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS td_tasks_duplicates ON td_tasks (project_id, duplicate_key, seq)
    WHERE status <> 'failed' AND duplicate_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS td_tasks_by_batch ON td_tasks (project_id, batch_id, seq);
CREATE INDEX IF NOT EXISTS td_tasks_completed
    ON td_tasks (project_id, completed_at) WHERE status = 'completed';
CREATE INDEX IF NOT EXISTS td_tasks_failed
    ON td_tasks (project_id, updated_at) WHERE status = 'failed';
CREATE INDEX IF NOT EXISTS td_tasks_active_type
    ON td_tasks (type_id) WHERE status IN ('queued', 'running');

-- Counts by status, kept by a trigger, so project stats never count 100,000 rows.
CREATE TABLE IF NOT EXISTS td_task_counts (
    project_id  text NOT NULL REFERENCES td_projects (id) ON DELETE CASCADE,
    status      text NOT NULL,
    count       bigint NOT NULL,
    PRIMARY KEY (project_id, status)
);

CREATE OR REPLACE FUNCTION td_count_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE td_task_counts SET count = count - 1
         WHERE project_id = OLD.project_id AND status = OLD.status;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO td_task_counts (project_id, status, count)
        VALUES (NEW.project_id, NEW.status, 1)
        ON CONFLICT (project_id, status) DO UPDATE SET count = td_task_counts.count + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER td_tasks_count
    AFTER INSERT OR UPDATE OF status OR DELETE ON td_tasks
    FOR EACH ROW EXECUTE FUNCTION td_count_tasks();

CREATE TABLE IF NOT EXISTS td_health (
    id          integer PRIMARY KEY,
    checked_at  timestamptz NOT NULL
);
