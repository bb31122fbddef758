-- Imports accepted by the gateway; parsing and committing progress come from the read models
-- connectors.import_progress_v1 and normalizer.import_progress_v1.
CREATE TABLE gateway.imports (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    kind text NOT NULL,
    filename text NOT NULL,
    path text NOT NULL,
    bytes_total bigint NOT NULL,
    mapping jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX imports_user_created ON gateway.imports (user_id, created_at DESC);

-- healthmesh.common.outbox.OUTBOX_TABLE_SQL
CREATE TABLE gateway.outbox (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    key bytea NOT NULL,
    payload jsonb NOT NULL,
    trace_context jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
