"""Which zone names are accepted."""

import pytest

from healthmesh.common.zones import iana_zone


@pytest.mark.parametrize("name", ["Europe/Berlin", "America/New_York", "UTC", "Etc/GMT+5"])
def test_iana_names_are_zones(name: str) -> None:
    zone = iana_zone(name)
    assert zone is not None and zone.key == name


@pytest.mark.parametrize(
    "name",
    [
        "localtime",
        "posixrules",
        "Factory",
        "Europe",
        "../etc/passwd",
        "europe/berlin",
        "",
        "+02:00",
    ],
)
def test_anything_else_is_not(name: str) -> None:
    assert iana_zone(name) is None
