-- A recorded UTC offset is a real one (ISO 8601 allows ±18 h; mappers reject the rest): the
-- rollups then find a local day's samples within 18 hours of the day.
ALTER TABLE normalizer.samples
    ADD CONSTRAINT samples_utc_offset_s CHECK (utc_offset_s BETWEEN -64800 AND 64800);

-- Announcements are JSON of a few hundred kB: compressing them (pglz) cost more than writing them.
ALTER TABLE normalizer.outbox ALTER COLUMN payload SET STORAGE EXTERNAL;
