"""The OAuth client's pure parts and each provider's quirks in parsing token answers."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from healthmesh.auth.oauth import (
    Credentials,
    InvalidGrant,
    Provider,
    ProviderRefused,
    ProviderUnavailable,
    TokenSet,
    authorize_url,
    new_state,
    pkce_pair,
)
from healthmesh.auth.providers import SPECS, registry
from healthmesh.auth.settings import Settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def provider(provider_id: str, base: str | None = "http://sim:8010") -> Provider:
    return Provider(SPECS[provider_id], Credentials("cid", "secret"), base)


def test_sandbox_urls_keep_the_real_path_under_the_provider_prefix() -> None:
    oura = provider("oura")
    assert oura.url(oura.spec.token_url) == "http://sim:8010/oura/oauth/token"
    assert provider("oura", None).url(oura.spec.token_url) == "https://api.ouraring.com/oauth/token"


def test_the_authorize_url_carries_each_providers_scope_separator_and_extras() -> None:
    _, challenge = pkce_pair()
    url = authorize_url(provider("fitbit"), "http://gw/cb", "s", challenge)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("http://sim:8010/fitbit/o/oauth2/v2/auth?")
    assert query["access_type"] == ["offline"] and query["code_challenge_method"] == ["S256"]
    assert " " in query["scope"][0]
    strava = parse_qs(urlsplit(authorize_url(provider("strava"), "http://gw/cb", "s", None)).query)
    assert strava["scope"] == ["read,activity:read_all"] and "code_challenge" not in strava


def test_whoop_states_are_exactly_8_characters() -> None:
    assert len(new_state(provider("whoop"))) == 8
    assert len(new_state(provider("oura"))) > 30


def test_a_google_refresh_answer_keeps_the_refresh_token_it_does_not_repeat() -> None:
    before = TokenSet("a1", "r1", NOW, ("x",), None)
    after = SPECS["fitbit"].parse_token(
        {"access_token": "a2", "expires_in": 3599, "token_type": "Bearer"}, before, NOW
    )
    assert (after.access_token, after.refresh_token, after.scopes) == ("a2", "r1", ("x",))
    assert after.expires_at == NOW + timedelta(seconds=3599)


def test_strava_takes_expires_at_and_the_athlete_id() -> None:
    tokens = SPECS["strava"].parse_token(
        {
            "access_token": "a",
            "refresh_token": "r",
            "expires_at": 1_767_250_000,
            "expires_in": 21600,
            "athlete": {"id": 134815},
        },
        None,
        NOW,
    )
    assert tokens.expires_at == datetime.fromtimestamp(1_767_250_000, UTC)
    assert tokens.provider_user_id == "134815"


def test_withings_unwraps_its_envelope_and_keeps_the_userid() -> None:
    tokens = SPECS["withings"].parse_token(
        {
            "status": 0,
            "body": {
                "userid": 362,
                "access_token": "a",
                "refresh_token": "r",
                "scope": "user.info,user.metrics",
                "expires_in": 10800,
                "token_type": "Bearer",
            },
        },
        None,
        NOW,
    )
    assert tokens.provider_user_id == "362" and tokens.scopes == ("user.info", "user.metrics")


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, InvalidGrant), (401, InvalidGrant), (601, ProviderUnavailable), (2555, ProviderRefused)],
)
def test_withings_errors_come_as_200_with_a_status(status: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        SPECS["withings"].parse_token({"status": status, "body": {}, "error": "x"}, None, NOW)


def test_tokens_never_show_in_their_repr() -> None:
    tokens = TokenSet("access-secret", "refresh-secret", NOW, (), None)
    assert "secret" not in repr(tokens)
    assert "secret" not in repr(Credentials("cid", "client-secret"))


def test_only_configured_providers_are_offered_unless_in_sandbox() -> None:
    assert registry(Settings(oura_client_id="a", oura_client_secret="b")).keys() == {"oura"}
    sandbox = registry(Settings(provider_base_url="http://sim:8010"))
    assert sandbox.keys() == {"oura", "whoop", "fitbit", "withings", "strava"}
    assert sandbox["whoop"].credentials.client_id == "sandbox-whoop"


def test_strava_refusals_of_a_dead_refresh_token_are_invalid_grants() -> None:
    refused = {
        "message": "Bad Request",
        "errors": [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}],
    }
    assert SPECS["strava"].grant_refused(400, refused)
    assert not SPECS["strava"].grant_refused(400, {"message": "Bad Request", "errors": []})
    assert SPECS["oura"].grant_refused(400, {"error": "invalid_grant"})
    assert not SPECS["oura"].grant_refused(401, {"error": "invalid_client"})
