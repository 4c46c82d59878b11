-- Quiet tallies (issue 21): the status counts' statement triggers cost more than most
-- writes they follow, and most of them had nothing to count. `put_task` is an upsert,
-- which fires both the INSERT and the UPDATE statement triggers: the INSERT one counted
-- an empty set on every update of a task, and the UPDATE one ran for a lease extended or
-- a progress report that moved no task between statuses. Now a trigger whose statement
-- moved nothing returns before calling `td_add_moves`.
CREATE OR REPLACE FUNCTION td_tally_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moves jsonb;  -- NULL: nothing moved (jsonb_agg of no rows)
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_agg(jsonb_build_object(
            'project_id', project_id, 'batch_id', batch_id, 'status', status, 'delta', 1))
        INTO moves FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT jsonb_agg(jsonb_build_object(
            'project_id', project_id, 'batch_id', batch_id, 'status', status, 'delta', -1))
        INTO moves FROM old_rows;
    ELSE
        SELECT jsonb_agg(move) INTO moves FROM (
            SELECT jsonb_build_object('project_id', o.project_id, 'batch_id', o.batch_id,
                                      'status', o.status, 'delta', -1) AS move
            FROM old_rows o JOIN new_rows n USING (id)
            WHERE o.status <> n.status OR o.batch_id IS DISTINCT FROM n.batch_id
            UNION ALL
            SELECT jsonb_build_object('project_id', n.project_id, 'batch_id', n.batch_id,
                                      'status', n.status, 'delta', 1)
            FROM old_rows o JOIN new_rows n USING (id)
            WHERE o.status <> n.status OR o.batch_id IS DISTINCT FROM n.batch_id) AS changed;
    END IF;
    IF moves IS NOT NULL THEN
        PERFORM td_add_moves(moves);
    END IF;
    RETURN NULL;
END $$;
