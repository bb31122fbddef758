-- Which categories of data each source can provide. A preference naming a source for a category
-- it cannot provide is refused (Strava has no sleep).
CREATE TABLE preferences.source_capabilities (
    source text NOT NULL,
    category text NOT NULL,
    PRIMARY KEY (source, category)
);

INSERT INTO preferences.source_capabilities (source, category) VALUES
    ('oura', 'activity'), ('oura', 'sleep'), ('oura', 'heart'), ('oura', 'recovery'),
    ('whoop', 'sleep'), ('whoop', 'heart'), ('whoop', 'recovery'), ('whoop', 'activity'),
    ('fitbit', 'activity'), ('fitbit', 'sleep'), ('fitbit', 'body'), ('fitbit', 'heart'),
    ('withings', 'body'), ('withings', 'activity'), ('withings', 'sleep'), ('withings', 'heart'),
    ('strava', 'activity'),
    ('apple_health', 'activity'), ('apple_health', 'sleep'), ('apple_health', 'body'),
    ('apple_health', 'heart'), ('apple_health', 'nutrition'),
    ('csv', 'activity'), ('csv', 'sleep'), ('csv', 'body'), ('csv', 'heart'),
    ('csv', 'recovery'), ('csv', 'nutrition'),
    ('cronometer', 'nutrition'), ('cronometer', 'body'),
    ('myfitnesspal', 'nutrition'), ('myfitnesspal', 'activity'), ('myfitnesspal', 'body');

-- The documented defaults, used for every category a user has not chosen for themselves:
-- dedicated devices first (a sleep ring for sleep, a scale for body, a food log for nutrition),
-- phone aggregators next, generic CSV imports last.
CREATE TABLE preferences.default_priorities (
    category text PRIMARY KEY,
    sources text[] NOT NULL,
    fallback boolean NOT NULL
);

INSERT INTO preferences.default_priorities (category, sources, fallback) VALUES
    ('activity', ARRAY['apple_health', 'fitbit', 'oura', 'whoop', 'withings', 'strava', 'csv'], true),
    ('sleep', ARRAY['oura', 'whoop', 'fitbit', 'withings', 'apple_health', 'csv'], true),
    ('body', ARRAY['withings', 'fitbit', 'apple_health', 'cronometer', 'myfitnesspal', 'csv'], true),
    ('heart', ARRAY['apple_health', 'oura', 'whoop', 'fitbit', 'withings', 'csv'], true),
    ('recovery', ARRAY['oura', 'whoop', 'csv'], true),
    ('nutrition', ARRAY['cronometer', 'myfitnesspal', 'apple_health', 'csv'], true);

CREATE TABLE preferences.user_priorities (
    user_id uuid NOT NULL,
    category text NOT NULL REFERENCES preferences.default_priorities (category),
    sources text[] NOT NULL,
    fallback boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, category)
);

CREATE TABLE preferences.user_overrides (
    user_id uuid NOT NULL,
    metric text NOT NULL,
    sources text[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, metric)
);
