-- One row per file import the importers worked on: how far parsing got, what it published.
CREATE TABLE connectors.imports (
    import_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    kind text NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'parsed', 'failed')),
    bytes_total bigint NOT NULL DEFAULT 0,
    bytes_read bigint NOT NULL DEFAULT 0,
    records_seen bigint NOT NULL DEFAULT 0,
    batches_published integer NOT NULL DEFAULT 0,
    errors jsonb NOT NULL DEFAULT '[]',
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Read model for the gateway (read-only): add columns, never change them.
CREATE VIEW connectors.import_progress_v1 AS
    SELECT import_id, user_id, kind, status, bytes_total, bytes_read, records_seen,
           batches_published, errors, started_at, finished_at
    FROM connectors.imports;
