"""An Apple Health export.zip uploaded through the gateway: unzipped and streamed by the
connectors, mapped by the normalizer, each day's numbers worked out by hand; unsafe or wrong
files refused before anything is queued."""

import io
import zipfile

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import Stack, sign_up, wait_until_finished

pytestmark = pytest.mark.e2e

WATCH = "Jane’s Apple Watch"  # noqa: RUF001 (iOS writes the curly apostrophe)
PHONE = "Jane’s iPhone"  # noqa: RUF001


def record(kind: str, source: str, unit: str, start: str, end: str, value: str) -> str:
    return (
        f'<Record type="HKQuantityTypeIdentifier{kind}" sourceName="{source}" unit="{unit}" '
        f'startDate="2024-03-01 {start} +0100" endDate="2024-03-01 {end} +0100" value="{value}"/>\n'
    )


SYSTOLIC = record("BloodPressureSystolic", "Omron", "mmHg", "07:00:00", "07:00:00", "120")
DIASTOLIC = record("BloodPressureDiastolic", "Omron", "mmHg", "07:00:00", "07:00:00", "80")
EXPORT = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<!DOCTYPE HealthData [\n<!ELEMENT HealthData ANY>\n<!ATTLIST HealthData locale CDATA>\n]>\n"
    '<HealthData locale="en_US">\n'
    ' <ExportDate value="2024-03-02 09:00:00 +0100"/>\n'
    # The phone counted 500 steps from 08:00 to 09:00; the watch, worn from 08:30, 300 of them.
    + record("StepCount", PHONE, "count", "08:00:00", "09:00:00", "500")
    + record("StepCount", WATCH, "count", "08:30:00", "09:00:00", "300")
    + record("StepCount", WATCH, "count", "10:00:00", "10:10:00", "200")
    + record("HeartRate", WATCH, "count/min", "08:15:00", "08:15:00", "72")
    + record("BodyMass", "Withings", "kg", "07:05:00", "07:05:00", "80.4")
    # A correlation's members are repeated at top level: they are the same two readings.
    + ' <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Omron" '
    'startDate="2024-03-01 07:00:00 +0100" endDate="2024-03-01 07:00:00 +0100">\n'
    + SYSTOLIC
    + DIASTOLIC
    + " </Correlation>\n"
    + SYSTOLIC
    + DIASTOLIC
    + "</HealthData>\n"
).encode()


def export_zip(xml: bytes = EXPORT, name: str = "apple_health_export/export.xml") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, xml)
        archive.writestr("apple_health_export/export_cda.xml", b"<ClinicalDocument/>")
    return buffer.getvalue()


async def upload(client: httpx.AsyncClient, auth: dict[str, str], body: bytes) -> httpx.Response:
    return await client.post(
        "/v1/imports",
        headers=auth,
        data={"kind": "apple_health"},
        files={"file": ("export.zip", body, "application/zip")},
    )


async def daily(stack: Stack, user_id: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            """SELECT metric, day::text, samples, total, raw_total
               FROM normalizer.daily_rollups_v1
               WHERE user_id = $1 AND source = 'apple_health' ORDER BY metric""",
            user_id,
        )
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


async def test_an_export_zip_becomes_each_days_numbers_counted_once(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    auth = await sign_up(client)
    user_id = (await client.get("/v1/me", headers=auth)).json()["id"]
    body = export_zip()

    accepted = await upload(client, auth, body)
    assert accepted.status_code == 202, accepted.text
    finished = await wait_until_finished(client, auth, accepted.json()["id"])
    assert finished["status"] == "done", finished
    # 5 records, the correlation, and its 2 members repeated at top level.
    assert (finished["records_seen"], finished["records_imported"]) == (8, 8)
    assert finished["bytes_read"] == finished["bytes_total"] == len(body)

    expected = [
        ("body_mass", "2024-03-01", 1, 80.4, 80.4),
        ("bp_diastolic", "2024-03-01", 1, 80.0, 80.0),
        ("bp_systolic", "2024-03-01", 1, 120.0, 120.0),
        ("heart_rate", "2024-03-01", 1, 72.0, 72.0),
        # The watch's 500 in full; the phone's 500 only for the half hour the watch was not
        # worn (250); a plain sum would say 1,000.
        ("steps", "2024-03-01", 3, 750.0, 1000.0),
    ]
    assert await daily(stack, user_id) == expected

    # The same export again: a new import, nothing new in the data.
    again = await upload(client, auth, body)
    assert (await wait_until_finished(client, auth, again.json()["id"]))["status"] == "done"
    assert await daily(stack, user_id) == expected


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (export_zip(EXPORT[:-14] + b" " * 3_000_000 + b"</HealthData>\n"), 422, "unsafe_archive"),
        (export_zip(name="../export.xml"), 422, "unsafe_archive"),
        (export_zip(name="apple_health_export/readme.txt"), 422, "unsafe_archive"),
        (
            export_zip(EXPORT.replace(b"<!ELEMENT", b'<!ENTITY x SYSTEM "file:///etc/passwd"><!E')),
            422,
            "unsafe_xml",
        ),
        (b"Date,Steps\n2024-03-01,1\n", 415, "unsupported_media_type"),
    ],
    ids=["zip bomb", "path traversal", "no export.xml", "external entity", "not an export"],
)
async def test_an_unsafe_or_wrong_file_is_refused_and_nothing_queued(
    client: httpx.AsyncClient, stack: Stack, body: bytes, status: int, code: str
) -> None:
    auth = await sign_up(client)
    answer = await upload(client, auth, body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
    assert (await client.get("/v1/imports", headers=auth)).json() == []
    incoming = stack.data_dir / "uploads" / ".incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []
