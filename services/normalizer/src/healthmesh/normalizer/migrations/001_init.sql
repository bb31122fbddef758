-- Unified samples: one row per natural key, upserted; revision counts real changes.
CREATE TABLE normalizer.samples (
    user_id uuid NOT NULL,
    metric text NOT NULL,
    source text NOT NULL,
    start_at timestamptz NOT NULL,
    end_at timestamptz NOT NULL,
    source_record_id text NOT NULL DEFAULT '',
    id uuid NOT NULL UNIQUE,
    value double precision NOT NULL,
    unit text NOT NULL,
    utc_offset_s integer NOT NULL,
    device text,
    quality real NOT NULL,
    quality_reason text,
    raw_event_id uuid NOT NULL,
    revision integer NOT NULL DEFAULT 1,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, metric, source, start_at, end_at, source_record_id)
);
CREATE INDEX samples_user_metric_time ON normalizer.samples (user_id, metric, start_at);

-- What each raw batch of a file import yielded, written in the same transaction as its samples,
-- so an import is "done" exactly when every batch's samples are committed.
CREATE TABLE normalizer.import_batches (
    import_id uuid NOT NULL,
    raw_event_id uuid NOT NULL,
    user_id uuid NOT NULL,
    records_imported integer NOT NULL,
    records_rejected integer NOT NULL,
    errors jsonb NOT NULL DEFAULT '[]',
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (import_id, raw_event_id)
);

-- healthmesh.common.outbox.OUTBOX_TABLE_SQL
CREATE TABLE normalizer.outbox (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    key bytea NOT NULL,
    payload jsonb NOT NULL,
    trace_context jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Read models the gateway may query (read-only); their columns are a contract: add, never change.
CREATE VIEW normalizer.samples_v1 AS
    SELECT user_id, metric, source, start_at, end_at, source_record_id, id, value, unit,
           utc_offset_s, device, quality, quality_reason, raw_event_id, revision, ingested_at
    FROM normalizer.samples;

CREATE VIEW normalizer.import_progress_v1 AS
    SELECT b.import_id, b.user_id, count(*) AS batches_committed,
           sum(b.records_imported)::bigint AS records_imported,
           sum(b.records_rejected)::bigint AS records_rejected,
           max(b.committed_at) AS last_committed_at,
           coalesce((SELECT jsonb_agg(e) FROM normalizer.import_batches AS b2,
                            jsonb_array_elements(b2.errors) AS e
                     WHERE b2.import_id = b.import_id), '[]') AS errors
    FROM normalizer.import_batches AS b
    GROUP BY b.import_id, b.user_id;
