-- Records their source deleted (a verified deletion webhook), and when the deletion was heard of.
-- A payload fetched before that moment (a sync that was already under way) holds the record as
-- it was before the deletion: its samples of that record are not stored again.
CREATE TABLE normalizer.withdrawn_records (
    user_id uuid NOT NULL,
    source text NOT NULL,
    source_record_id text NOT NULL,
    withdrawn_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, source, source_record_id)
);
