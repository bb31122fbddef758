-- Each day rollup also sums up the source's hour rollups that fall on that local day (by each
-- hour's recorded offset): which UTC hours (`hour_mask`, bit i: the hour starting i - 18 hours
-- after the local date's midnight read as UTC; offsets reach 18 hours either way, so 60 bits)
-- and what they add up to. The gateway falls back per hour from the day rows alone, reading
-- hour rows only for the hours one source fills in for another. Kept in step by rollups.py.
ALTER TABLE normalizer.daily_rollups
    ADD COLUMN hour_mask bigint NOT NULL DEFAULT 0,
    ADD COLUMN hours_samples integer NOT NULL DEFAULT 0,
    ADD COLUMN hours_total double precision NOT NULL DEFAULT 0,
    ADD COLUMN hours_raw_total double precision NOT NULL DEFAULT 0;

UPDATE normalizer.daily_rollups AS r
SET hour_mask = h.mask, hours_samples = h.samples, hours_total = h.total,
    hours_raw_total = h.raw_total
FROM (
    SELECT user_id, metric, source,
           date '1970-01-01' + ((date_part('epoch', hour)::int8 + utc_offset_s) / 86400)::int
               AS day,
           bit_or(1::int8 << (18 + (date_part('epoch', hour)::int8
               - (date_part('epoch', hour)::int8 + utc_offset_s) / 86400 * 86400) / 3600)::int)
               AS mask,
           sum(samples)::int AS samples, sum(total) AS total, sum(raw_total) AS raw_total
    FROM normalizer.hourly_rollups
    GROUP BY 1, 2, 3, 4
) AS h
WHERE r.user_id = h.user_id AND r.metric = h.metric AND r.source = h.source AND r.day = h.day;

CREATE OR REPLACE VIEW normalizer.daily_rollups_v1 AS
    SELECT user_id, metric, source, day, samples, total, raw_total, minimum, maximum,
           last_value, last_at, utc_offset_s, devices, hour_mask, hours_samples, hours_total,
           hours_raw_total
    FROM normalizer.daily_rollups;
