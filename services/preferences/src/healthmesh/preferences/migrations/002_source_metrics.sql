-- Which metrics each source can provide: exactly what its mapper in the normalizer emits
-- (services/normalizer/src/healthmesh/normalizer/sources/<source>.py). An override naming a
-- source for a metric it never yields is refused: Strava's activities are `workout` samples only
-- (their distance and energy stay in the workout's details, never daily `distance` or
-- `active_energy` samples), WHOOP counts no steps, Oura and WHOOP give no daily distance.
-- A generic CSV can carry any metric of the vocabulary (the user's column mapping says which).
CREATE TABLE preferences.source_metrics (
    source text NOT NULL,
    metric text NOT NULL,
    PRIMARY KEY (source, metric)
);

INSERT INTO preferences.source_metrics (source, metric)
SELECT source, unnest(metrics) FROM (VALUES
    ('apple_health', ARRAY[
        'steps', 'distance', 'active_energy', 'basal_energy', 'floors', 'active_minutes', 'workout',
        'sleep_session', 'sleep_duration',
        'body_mass', 'body_fat', 'bmi', 'lean_mass', 'body_temperature', 'skin_temperature',
        'heart_rate', 'resting_heart_rate', 'hrv_sdnn', 'spo2', 'respiratory_rate', 'vo2max',
        'bp_systolic', 'bp_diastolic',
        'energy_intake', 'protein', 'carbohydrate', 'fat', 'fiber', 'sugar', 'sodium', 'water']),
    ('fitbit', ARRAY[
        'steps', 'distance', 'active_minutes', 'total_energy', 'workout',
        'sleep_session', 'sleep_duration',
        'body_mass', 'body_fat',
        'heart_rate', 'resting_heart_rate', 'hrv_rmssd', 'spo2']),
    ('oura', ARRAY[
        'steps', 'active_energy', 'total_energy', 'active_minutes', 'workout',
        'sleep_session', 'sleep_duration',
        'heart_rate', 'resting_heart_rate', 'hrv_rmssd', 'spo2', 'respiratory_rate',
        'readiness']),
    ('whoop', ARRAY[
        'total_energy', 'workout',
        'sleep_session', 'sleep_duration',
        'skin_temperature',
        'heart_rate', 'resting_heart_rate', 'hrv_rmssd', 'spo2', 'respiratory_rate',
        'recovery', 'strain']),
    ('withings', ARRAY[
        'steps', 'distance', 'floors', 'active_energy', 'total_energy', 'active_minutes',
        'workout',
        'sleep_session', 'sleep_duration',
        'body_mass', 'body_fat', 'lean_mass', 'muscle_mass', 'bone_mass', 'body_temperature',
        'skin_temperature',
        'heart_rate', 'spo2', 'respiratory_rate', 'vo2max', 'bp_systolic', 'bp_diastolic']),
    ('strava', ARRAY['workout']),
    ('cronometer', ARRAY[
        'workout',
        'body_mass', 'body_fat', 'bmi', 'lean_mass', 'muscle_mass', 'bone_mass',
        'body_temperature',
        'heart_rate', 'resting_heart_rate', 'spo2', 'respiratory_rate', 'vo2max',
        'bp_systolic', 'bp_diastolic',
        'energy_intake', 'protein', 'carbohydrate', 'fat', 'fiber', 'sugar', 'sodium', 'water']),
    ('myfitnesspal', ARRAY[
        'steps', 'workout',
        'body_mass', 'body_fat',
        'energy_intake', 'protein', 'carbohydrate', 'fat', 'fiber', 'sugar', 'sodium']),
    ('csv', ARRAY[
        'steps', 'distance', 'active_energy', 'floors', 'active_minutes', 'basal_energy',
        'total_energy', 'workout',
        'sleep_session', 'sleep_duration',
        'body_mass', 'body_fat', 'bmi', 'lean_mass', 'muscle_mass', 'bone_mass',
        'body_temperature', 'skin_temperature',
        'heart_rate', 'resting_heart_rate', 'hrv_rmssd', 'hrv_sdnn', 'spo2', 'respiratory_rate',
        'bp_systolic', 'bp_diastolic', 'vo2max',
        'readiness', 'recovery', 'strain',
        'energy_intake', 'protein', 'carbohydrate', 'fat', 'fiber', 'sugar', 'sodium', 'water'])
) AS given (source, metrics);

-- source_capabilities stays the categories of those metrics: Cronometer's biometrics include
-- heart readings and its exercise log workouts; WHOOP's skin temperature is a body metric.
INSERT INTO preferences.source_capabilities (source, category) VALUES
    ('cronometer', 'activity'), ('cronometer', 'heart'), ('whoop', 'body');

-- Every source that can provide a category is in that category's default order, so a user who
-- chose nothing sees the data of every source they have (the gateway skips sources without data).
UPDATE preferences.default_priorities
SET sources = ARRAY[
    'apple_health', 'fitbit', 'oura', 'whoop', 'withings', 'strava', 'myfitnesspal', 'cronometer',
    'csv']
WHERE category = 'activity';

UPDATE preferences.default_priorities
SET sources = ARRAY[
    'withings', 'fitbit', 'apple_health', 'whoop', 'cronometer', 'myfitnesspal', 'csv']
WHERE category = 'body';

UPDATE preferences.default_priorities
SET sources = ARRAY['apple_health', 'oura', 'whoop', 'fitbit', 'withings', 'cronometer', 'csv']
WHERE category = 'heart';
