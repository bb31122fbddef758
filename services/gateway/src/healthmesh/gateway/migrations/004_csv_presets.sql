-- Named CSV column mappings, saved per user for reuse (/v1/csv-presets); a mapping is stored as
-- validated (healthmesh.common.events.CsvMapping) and validated again when used.
CREATE TABLE gateway.csv_presets (
    user_id uuid NOT NULL,
    name text NOT NULL,
    mapping jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, name)
);
