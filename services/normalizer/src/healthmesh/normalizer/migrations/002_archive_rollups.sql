-- Sessions carry details (sleep stages, a workout's sport and totals).
ALTER TABLE normalizer.samples ADD COLUMN details jsonb;

-- Lookups by lineage: a reprocessed raw event withdraws the samples its new mapping no longer yields.
CREATE INDEX samples_raw_event ON normalizer.samples (raw_event_id);

-- A provider record whose times were edited keeps its id: its old sample is found and withdrawn.
CREATE INDEX samples_record ON normalizer.samples (user_id, source, metric, source_record_id)
    WHERE source_record_id <> '';

-- Every raw event as it arrived (the envelope's JSON, zlib-compressed), kept for `reprocess`:
-- a mapper bug is fixed by a code change plus a replay from here, never by a data migration.
CREATE TABLE normalizer.raw_archive (
    raw_event_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    source text NOT NULL,
    resource text NOT NULL,
    window_start timestamptz,
    window_end timestamptz,
    fetched_at timestamptz NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now(),
    envelope bytea NOT NULL
);
ALTER TABLE normalizer.raw_archive ALTER COLUMN envelope SET STORAGE EXTERNAL;  -- already compressed
CREATE INDEX raw_archive_user_source ON normalizer.raw_archive (user_id, source, fetched_at);
CREATE INDEX raw_archive_archived_at ON normalizer.raw_archive (archived_at);

-- Records a mapper rejected inside an otherwise mapped payload (the rest of it went through):
-- where and why, so a bad provider record is seen, not silently dropped.
CREATE TABLE normalizer.rejected_records (
    raw_event_id uuid NOT NULL,
    record text NOT NULL,
    user_id uuid NOT NULL,
    source text NOT NULL,
    resource text NOT NULL,
    reason text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (raw_event_id, record)
);
CREATE INDEX rejected_records_user ON normalizer.rejected_records (user_id, rejected_at);

-- Per-source aggregates of plausible samples (quality > 0), kept in step with the samples in the
-- same transaction, so queries never rescan raw samples. `total` is free of overlaps between
-- devices of one source (iPhone + Watch); `raw_total` is the plain sum, for explanations.
CREATE TABLE normalizer.daily_rollups (
    user_id uuid NOT NULL,
    metric text NOT NULL,
    source text NOT NULL,
    day date NOT NULL,
    samples integer NOT NULL,
    total double precision NOT NULL,
    raw_total double precision NOT NULL,
    minimum double precision NOT NULL,
    maximum double precision NOT NULL,
    last_value double precision NOT NULL,
    last_at timestamptz NOT NULL,
    utc_offset_s integer NOT NULL,
    devices integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, metric, source, day)
);

-- The same per UTC hour, for intraday samples (an hour long or shorter).
CREATE TABLE normalizer.hourly_rollups (
    user_id uuid NOT NULL,
    metric text NOT NULL,
    source text NOT NULL,
    hour timestamptz NOT NULL,
    samples integer NOT NULL,
    total double precision NOT NULL,
    raw_total double precision NOT NULL,
    minimum double precision NOT NULL,
    maximum double precision NOT NULL,
    last_value double precision NOT NULL,
    last_at timestamptz NOT NULL,
    utc_offset_s integer NOT NULL,
    devices integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, metric, source, hour)
);

CREATE OR REPLACE VIEW normalizer.samples_v1 AS
    SELECT user_id, metric, source, start_at, end_at, source_record_id, id, value, unit,
           utc_offset_s, device, quality, quality_reason, raw_event_id, revision, ingested_at,
           details
    FROM normalizer.samples;

CREATE VIEW normalizer.daily_rollups_v1 AS
    SELECT user_id, metric, source, day, samples, total, raw_total, minimum, maximum,
           last_value, last_at, utc_offset_s, devices
    FROM normalizer.daily_rollups;

CREATE VIEW normalizer.hourly_rollups_v1 AS
    SELECT user_id, metric, source, hour, samples, total, raw_total, minimum, maximum,
           last_value, last_at, utc_offset_s, devices
    FROM normalizer.hourly_rollups;
