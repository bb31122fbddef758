-- The outbox keeps each payload as the JSON bytes the relay publishes
-- (healthmesh.common.outbox.encode): no jsonb parse on insert, no re-encoding on publish.
ALTER TABLE normalizer.outbox ALTER COLUMN payload TYPE bytea USING convert_to(payload::text, 'UTF8');
