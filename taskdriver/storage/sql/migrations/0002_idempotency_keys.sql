-- Idempotency-Key: what a create made, kept 24 hours, so that a client may repeat a create
-- whose answer it never received. `scope` is '' for project creates and the project's id for
-- what is created inside a project; `project_id` deletes those with their project.

CREATE TABLE td_idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL,
    project_id   text REFERENCES td_projects (id) ON DELETE CASCADE,
    created_at   double precision NOT NULL,
    data         jsonb NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX td_idempotency_keys_by_age ON td_idempotency_keys (created_at);
