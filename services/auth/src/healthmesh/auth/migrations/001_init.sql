CREATE TABLE auth.users (
    id uuid PRIMARY KEY,
    email text NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash text NOT NULL,
    timezone text NOT NULL DEFAULT 'UTC',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a refresh token is stored. A family is one login's chain of rotated tokens.
CREATE TABLE auth.refresh_tokens (
    token_hash text PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    family_id uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refresh_tokens_family_idx ON auth.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON auth.refresh_tokens (user_id);

-- Private keys are stored unencrypted for now; see healthmesh.auth.signing_keys.
CREATE TABLE auth.signing_keys (
    kid text PRIMARY KEY,
    private_pem text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
