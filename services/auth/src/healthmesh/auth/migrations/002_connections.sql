-- OAuth connect in flight: the state is random, single-use, bound to the user, short-lived.
CREATE TABLE auth.oauth_states (
    state text PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    provider text NOT NULL,
    code_verifier text,
    redirect_uri text NOT NULL,
    app_redirect text,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per (user, provider). Tokens are AES-GCM ciphertexts with their key id beside them.
CREATE TABLE auth.connections (
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    provider text NOT NULL,
    status text NOT NULL CHECK (status IN ('connected', 'reauth_required', 'error')),
    provider_user_id text,
    scopes text[] NOT NULL DEFAULT '{}',
    access_token bytea NOT NULL,
    access_token_kid text NOT NULL,
    refresh_token bytea,
    refresh_token_kid text,
    expires_at timestamptz NOT NULL,
    connected_at timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider)
);
CREATE INDEX connections_kid_idx ON auth.connections (access_token_kid);

-- healthmesh.common.outbox.OUTBOX_TABLE_SQL
CREATE TABLE auth.outbox (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    key bytea NOT NULL,
    payload jsonb NOT NULL,
    trace_context jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
