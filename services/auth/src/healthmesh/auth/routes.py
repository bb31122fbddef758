"""The auth service's HTTP API: users, tokens, the caller, the JWKS."""

from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Form, Response
from pydantic import BaseModel, ConfigDict, EmailStr

from healthmesh.auth import db
from healthmesh.auth.deps import AppSettings, CurrentCaller, Db, Hasher, Keys
from healthmesh.auth.grants import IssuedTokens, password_grant, refresh_grant
from healthmesh.auth.passwords import password_problem
from healthmesh.common.http import ApiError
from healthmesh.common.zones import iana_zone

router = APIRouter()


class NewUser(BaseModel):
    email: EmailStr
    password: str
    timezone: str = "UTC"


class MeChange(BaseModel):
    """The body of PATCH /v1/me: a misspelt field is refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")

    timezone: str


class User(BaseModel):
    id: UUID
    email: str


class Me(BaseModel):
    id: UUID
    email: str
    timezone: str


class TokenAnswer(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a token type, not a secret)
    expires_in: int
    refresh_token: str


class Jwks(BaseModel):
    keys: list[dict[str, Any]]


def checked_timezone(name: str) -> str:
    """An IANA zone name; the gateway's imports read the days of diary files in it, so an
    unknown one must never be stored."""
    if iana_zone(name) is None:
        raise ApiError(422, "invalid_timezone", f"unknown timezone {name!r}: expected an IANA name")
    return name


@router.post("/v1/users", status_code=201)
async def create_user(body: NewUser, pool: Db, passwords: Hasher) -> User:
    """Register a user with an email address, a password and optionally a timezone (else UTC)."""
    email = body.email.lower()
    problem = password_problem(email, body.password)
    if problem is not None:
        raise ApiError(422, "weak_password", problem)
    timezone = checked_timezone(body.timezone)
    row = await db.insert_user(pool, uuid4(), email, await passwords.hash(body.password), timezone)
    if row is None:
        raise ApiError(409, "email_taken", "an account with this email address already exists")
    return User(id=row["id"], email=row["email"])


@router.post("/v1/auth/token")
async def issue_tokens(
    response: Response,
    pool: Db,
    passwords: Hasher,
    keys: Keys,
    settings: AppSettings,
    grant_type: Annotated[str | None, Form()] = None,
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
) -> TokenAnswer:
    """Exchange an email and password, or a refresh token, for an access and a refresh token."""
    response.headers["Cache-Control"] = "no-store"
    issued: IssuedTokens
    if grant_type == "refresh_token":
        if not refresh_token:
            raise ApiError(400, "invalid_request", "refresh_token is required")
        issued = await refresh_grant(pool, keys, settings, refresh_token)
    elif grant_type in (None, "password"):
        if not username or not password:
            raise ApiError(400, "invalid_request", "username and password are required")
        issued = await password_grant(pool, passwords, keys, settings, username, password)
    else:
        raise ApiError(
            400, "unsupported_grant_type", "grant_type must be password or refresh_token"
        )
    return TokenAnswer(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
    )


@router.get("/v1/me")
async def me(caller: CurrentCaller, pool: Db) -> Me:
    """The signed-in user."""
    row = await db.user_by_id(pool, caller.user_id)
    if row is None:
        raise ApiError(401, "unauthorized", "the token's user no longer exists")
    return Me(id=row["id"], email=row["email"], timezone=row["timezone"])


@router.patch("/v1/me")
async def change_me(body: MeChange, caller: CurrentCaller, pool: Db) -> Me:
    """Set the signed-in user's profile timezone (the default zone of diary imports)."""
    row = await db.update_timezone(pool, caller.user_id, checked_timezone(body.timezone))
    if row is None:
        raise ApiError(401, "unauthorized", "the token's user no longer exists")
    return Me(id=row["id"], email=row["email"], timezone=row["timezone"])


@router.get("/.well-known/jwks.json")
async def jwks(keys: Keys, response: Response) -> Jwks:
    """The public keys that verify access tokens."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return Jwks(**keys.jwks())
