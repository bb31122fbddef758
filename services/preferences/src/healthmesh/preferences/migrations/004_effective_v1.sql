-- A user's effective preferences, as this service answers `GET /v1/preferences` and as the
-- gateway reads them on every resolved query (one statement instead of a call to this service):
-- each category's order and fallback switch, the user's choice or else the default
-- (`is_default`), then the per-metric overrides (kind 'override', fallback NULL). A read model
-- like the normalizer's *_v1 views: its columns change only with a new version.
CREATE FUNCTION preferences.effective_v1(p_user_id uuid)
RETURNS TABLE (kind text, name text, sources text[], fallback boolean, is_default boolean)
LANGUAGE sql STABLE AS $$
    SELECT 'category', d.category, coalesce(u.sources, d.sources),
           coalesce(u.fallback, d.fallback), u.user_id IS NULL
    FROM preferences.default_priorities AS d
    LEFT JOIN preferences.user_priorities AS u
           ON u.category = d.category AND u.user_id = p_user_id
    UNION ALL
    SELECT 'override', o.metric, o.sources, NULL, false
    FROM preferences.user_overrides AS o
    WHERE o.user_id = p_user_id
    ORDER BY 1, 2
$$;
