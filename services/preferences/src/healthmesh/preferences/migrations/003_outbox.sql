-- healthmesh.common.outbox.OUTBOX_TABLE_SQL: `preferences.changed` is queued here in the
-- transaction that changes a user's priority or override, and published by the relay.
CREATE TABLE preferences.outbox (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    key bytea NOT NULL,
    payload bytea NOT NULL,
    trace_context jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
