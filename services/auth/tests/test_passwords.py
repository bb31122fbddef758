import pytest

from healthmesh.auth.passwords import MIN_LENGTH, Passwords, password_problem


def test_a_long_password_unrelated_to_the_email_is_accepted() -> None:
    assert password_problem("ada@example.com", "correct horse battery") is None


def test_a_short_password_is_refused_with_the_minimum() -> None:
    problem = password_problem("ada@example.com", "x" * (MIN_LENGTH - 1))
    assert problem is not None
    assert str(MIN_LENGTH) in problem


def test_exactly_the_minimum_length_is_enough() -> None:
    assert password_problem("ada@example.com", "q" * MIN_LENGTH) is None


def test_a_password_containing_the_local_part_is_refused_whatever_the_case() -> None:
    problem = password_problem("Lovelace@example.com", "my-LOVELACE-2024")
    assert problem is not None
    assert "before the @" in problem


def test_a_one_letter_local_part_does_not_forbid_that_letter() -> None:
    assert password_problem("a@example.com", "banana bread 42") is None


def test_an_absurdly_long_password_is_refused() -> None:
    assert password_problem("ada@example.com", "x" * 5000) is not None


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords()


async def test_hash_then_verify(passwords: Passwords) -> None:
    password_hash = await passwords.hash("correct horse battery")
    assert password_hash.startswith("$argon2id$")
    assert "correct horse battery" not in password_hash
    assert await passwords.verify(password_hash, "correct horse battery")
    assert not await passwords.verify(password_hash, "wrong horse battery")
    assert not passwords.needs_rehash(password_hash)


async def test_without_a_hash_verification_fails(passwords: Passwords) -> None:
    assert not await passwords.verify(None, "anything at all")


async def test_a_corrupt_hash_fails_instead_of_raising(passwords: Passwords) -> None:
    assert not await passwords.verify("not-a-hash", "anything at all")
