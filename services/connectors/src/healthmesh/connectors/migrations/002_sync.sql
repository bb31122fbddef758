-- Provider syncs: who is connected (learnt from connections.changed), what is synced, what runs.

-- The connectors' copy of each connection (auth owns the truth and the tokens).
CREATE TABLE connectors.links (
    user_id uuid NOT NULL,
    provider text NOT NULL,
    provider_user_id text,
    status text NOT NULL CHECK (status IN ('connected', 'reauth_required', 'disconnected')),
    connected_at timestamptz NOT NULL,
    next_sync_at timestamptz,
    last_sync_at timestamptz,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider)
);
CREATE INDEX links_due ON connectors.links (next_sync_at) WHERE status = 'connected';
CREATE INDEX links_by_provider_user ON connectors.links (provider, provider_user_id);

-- Everything of this resource before synced_until has been published and acknowledged.
CREATE TABLE connectors.cursors (
    user_id uuid NOT NULL,
    provider text NOT NULL,
    resource text NOT NULL,
    synced_until timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider, resource)
);

-- The sync queue. At most one queued and one running job per (user, provider): a new request
-- joins the queued one (its range widened); workers claim with FOR UPDATE SKIP LOCKED and hold
-- a lease they renew; an expired lease (a dead worker) lets another worker resume the job.
CREATE TABLE connectors.sync_jobs (
    sync_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    provider text NOT NULL,
    reason text NOT NULL CHECK (reason IN ('connect', 'schedule', 'webhook', 'manual')),
    status text NOT NULL
        CHECK (status IN ('queued', 'running', 'done', 'failed', 'reauth_required', 'cancelled')),
    range_start timestamptz NOT NULL,
    range_end timestamptz,
    resources text[],
    progress jsonb NOT NULL DEFAULT '{}',
    attempts integer NOT NULL DEFAULT 0,
    not_before timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    worker text,
    calls integer NOT NULL DEFAULT 0,
    min_calls integer NOT NULL DEFAULT 0,
    rate_limited integer NOT NULL DEFAULT 0,
    events integer NOT NULL DEFAULT 0,
    error text,
    requested_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);
CREATE UNIQUE INDEX sync_jobs_one_queued ON connectors.sync_jobs (user_id, provider)
    WHERE status = 'queued';
CREATE UNIQUE INDEX sync_jobs_one_running ON connectors.sync_jobs (user_id, provider)
    WHERE status = 'running';
CREATE INDEX sync_jobs_open ON connectors.sync_jobs (not_before)
    WHERE status IN ('queued', 'running');
CREATE INDEX sync_jobs_by_user ON connectors.sync_jobs (user_id, provider, requested_at DESC);

-- Shared rate budgets: calls counted per epoch-aligned window, by every worker process.
CREATE TABLE connectors.rate_windows (
    budget text NOT NULL,
    window_start timestamptz NOT NULL,
    used integer NOT NULL,
    PRIMARY KEY (budget, window_start)
);

-- A provider said "stop" (429, Retry-After): nobody calls under this budget until `until`.
CREATE TABLE connectors.rate_pauses (
    budget text PRIMARY KEY,
    until timestamptz NOT NULL
);

-- Read model for the gateway (read-only): add columns, never change them.
CREATE VIEW connectors.sync_status_v1 AS
    SELECT l.user_id, l.provider, l.status AS link_status, l.last_sync_at, l.last_error,
           EXISTS (SELECT 1 FROM connectors.sync_jobs j
                   WHERE j.user_id = l.user_id AND j.provider = l.provider
                     AND j.status IN ('queued', 'running')) AS syncing,
           (SELECT j.status FROM connectors.sync_jobs j
            WHERE j.user_id = l.user_id AND j.provider = l.provider
              AND j.status NOT IN ('queued', 'running')
            ORDER BY j.finished_at DESC NULLS LAST LIMIT 1) AS last_job_status,
           (SELECT max(j.finished_at) FROM connectors.sync_jobs j
            WHERE j.user_id = l.user_id AND j.provider = l.provider) AS last_job_finished_at
    FROM connectors.links l;
