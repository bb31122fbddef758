-- Resumable uploads (routes/uploads.py). The bytes live in {upload_dir}/.resumable/{id};
-- `received` counts the bytes written and fsync'd, so anything in the file past it is a tail a
-- crashed writer never committed (the next chunk cuts it off). A row is gone once its upload is
-- imported, deleted, or expired (`expires_at` passes without a chunk written).
CREATE TABLE gateway.uploads (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    filename text NOT NULL,
    length bigint NOT NULL CHECK (length > 0),
    received bigint NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= length),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX uploads_expires_at ON gateway.uploads (expires_at);
