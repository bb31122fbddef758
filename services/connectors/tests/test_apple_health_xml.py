"""The Apple Health export.xml reader: items as plain dicts, the DTD skipped, bombs refused,
truncated and invalid files reported with their line after everything before it was yielded."""

import io
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from healthmesh.connectors.importers.apple_health_xml import ExportError, read_export

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
SAMPLE = SHARED / "reference" / "samples" / "apple_health" / "export.v3_2016.tdda_sample.xml"
GENERATOR = SHARED / "tools" / "gen_apple_health.py"

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'  # line 1
    "<!DOCTYPE HealthData [\n"  # 2
    "<!-- HealthKit Export Version: 13 -->\n"  # 3
    "<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>\n"  # 4
    "<!ATTLIST HealthData locale CDATA #REQUIRED>\n"  # 5
    "]>\n"  # 6
    '<HealthData locale="en_US">\n'  # 7
    ' <ExportDate value="2024-01-02 08:00:00 -0800"/>\n'  # 8
)
"""A hand-made export's first 8 lines: its body starts on line 9."""

WATCH = (
    "&lt;&lt;HKDevice: 0x283ac4d70&gt;, name:Apple Watch, manufacturer:Apple Inc., "
    "model:Watch, hardware:Watch6,1, software:10.1&gt;"
)
WATCH_TEXT = (
    "<<HKDevice: 0x283ac4d70>, name:Apple Watch, manufacturer:Apple Inc., "
    "model:Watch, hardware:Watch6,1, software:10.1>"
)


def export(body: str, header: str = HEADER) -> io.BytesIO:
    return io.BytesIO((header + body + "</HealthData>\n").encode())


def read_all(stream: io.BytesIO) -> list[dict[str, Any]]:
    return list(read_export(stream))


# --- the real sample -----------------------------------------------------------------------------


def test_the_real_2016_sample_counts_per_kind() -> None:
    with SAMPLE.open("rb") as stream:
        items = list(read_export(stream))
    # lines 83-92: 10 StepCount, 93-97: 5 DistanceWalkingRunning, 98-99: 2 ActivitySummary,
    # 100: 1 Workout; ExportDate and Me are not items
    assert Counter(item["kind"] for item in items) == {
        "record": 15,
        "activity_summary": 2,
        "workout": 1,
    }
    assert [item["line"] for item in items] == list(range(83, 101))
    types = Counter(item["type"] for item in items if item["kind"] == "record")
    assert types == {
        "HKQuantityTypeIdentifierStepCount": 10,
        "HKQuantityTypeIdentifierDistanceWalkingRunning": 5,
    }


def test_the_real_2016_sample_items_in_full() -> None:
    with SAMPLE.open("rb") as stream:
        items = list(read_export(stream))
    assert items[0] == {
        "kind": "record",
        "line": 83,
        "type": "HKQuantityTypeIdentifierStepCount",
        "sourceName": "Health",
        "unit": "count",
        "creationDate": "2014-09-21 07:08:47 +0100",
        "startDate": "2014-09-13 10:27:54 +0100",
        "endDate": "2014-09-13 10:27:59 +0100",
        "value": "329",
        "metadata": {},
    }
    assert items[14] == {
        "kind": "record",
        "line": 97,
        "type": "HKQuantityTypeIdentifierDistanceWalkingRunning",
        "sourceName": "Health",
        "unit": "km",
        "creationDate": "2014-09-21 07:08:49 +0100",
        "startDate": "2014-09-20 10:43:59 +0100",
        "endDate": "2014-09-20 10:44:01 +0100",
        "value": "0.0059",
        "metadata": {},
    }
    assert items[15] == {
        "kind": "activity_summary",
        "line": 98,
        "dateComponents": "2016-04-14",
        "activeEnergyBurned": "700.698",
        "activeEnergyBurnedGoal": "680",
        "activeEnergyBurnedUnit": "kcal",
        "appleExerciseTime": "89",
        "appleExerciseTimeGoal": "30",
        "appleStandHours": "16",
        "appleStandHoursGoal": "12",
    }
    assert items[17] == {
        "kind": "workout",
        "line": 100,
        "workoutActivityType": "HKWorkoutActivityTypeOther",
        "duration": "31.73680251737436",
        "durationUnit": "min",
        "totalDistance": "0",
        "totalDistanceUnit": "km",
        "totalEnergyBurned": "139.3170000000021",
        "totalEnergyBurnedUnit": "kcal",
        "sourceName": "NJR Apple\u00a0Watch",  # the file has a no-break space there
        "sourceVersion": "2.2",
        "creationDate": "2016-04-02 11:12:57 +0100",
        "startDate": "2016-04-02 10:40:38 +0100",
        "endDate": "2016-04-02 11:12:22 +0100",
        "metadata": {},
        "statistics": [],
        "events": [],
    }


# --- hand-made modern exports --------------------------------------------------------------------

IOS16_BROKEN_DTD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'  # 1
    "<!DOCTYPE HealthData [\n"  # 2
    "<!-- HealthKit Export Version: 12 -->\n"  # 3
    "<!ELEMENT HealthData (ExportDate,Me,(Record|Workout)*)>\n"  # 4
    "<!ELEMENT VisionPrescription EMPTY>\n"  # 5
    "<!ATTLIST VisionPrescription\n"  # 6: never closed, as iOS 16 wrote it
    "  type CDATA #REQUIRED\n"  # 7
    "  brand CDATA #IMPLIED\n"  # 8
    "<!ELEMENT RightEye EMPTY>\n"  # 9
    "]>\n"  # 10
    '<HealthData locale="de_DE">\n'  # 11
)


def test_ios16_sleep_stages_behind_the_broken_ios16_dtd() -> None:
    sleep = "HKCategoryTypeIdentifierSleepAnalysis"
    items = read_all(
        export(
            f' <Record type="{sleep}" sourceName="Annas Apple Watch" sourceVersion="9.0" '
            f'device="{WATCH}" creationDate="2022-10-01 07:00:00 +0200" '
            'startDate="2022-10-01 00:30:00 +0200" endDate="2022-10-01 01:10:00 +0200" '
            'value="HKCategoryValueSleepAnalysisAsleepCore">\n'  # 12
            '  <MetadataEntry key="HKTimeZone" value="Europe/Berlin"/>\n'  # 13
            " </Record>\n"  # 14
            f' <Record type="{sleep}" sourceName="Annas Apple Watch" '
            'startDate="2022-10-01 01:10:00 +0200" endDate="2022-10-01 01:35:00 +0200" '
            'value="HKCategoryValueSleepAnalysisAsleepDeep"/>\n'  # 15
            f' <Record type="{sleep}" sourceName="Annas Apple Watch" '
            'startDate="2022-10-01 01:35:00 +0200" endDate="2022-10-01 01:40:00 +0200" '
            'value="HKCategoryValueSleepAnalysisAwake"/>\n',  # 16
            header=IOS16_BROKEN_DTD,
        )
    )
    assert items[0] == {
        "kind": "record",
        "line": 12,
        "type": sleep,
        "sourceName": "Annas Apple Watch",
        "sourceVersion": "9.0",
        "device": WATCH_TEXT,
        "creationDate": "2022-10-01 07:00:00 +0200",
        "startDate": "2022-10-01 00:30:00 +0200",
        "endDate": "2022-10-01 01:10:00 +0200",
        "value": "HKCategoryValueSleepAnalysisAsleepCore",
        "metadata": {"HKTimeZone": "Europe/Berlin"},
    }
    assert [(i["line"], i["value"]) for i in items[1:]] == [
        (15, "HKCategoryValueSleepAnalysisAsleepDeep"),
        (16, "HKCategoryValueSleepAnalysisAwake"),
    ]


def test_hrv_record_with_its_beats() -> None:
    [item] = read_all(
        export(
            ' <Record type="HKQuantityTypeIdentifierHeartRateVariabilitySDNN" '
            'sourceName="Jane\u2019s Apple Watch" unit="ms" '
            'startDate="2023-05-01 22:10:00 -0700" endDate="2023-05-01 22:11:00 -0700" '
            'value="48.2713">\n'  # 9
            "  <HeartRateVariabilityMetadataList>\n"
            '   <InstantaneousBeatsPerMinute bpm="62" time="10:10:01.52 PM"/>\n'
            '   <InstantaneousBeatsPerMinute bpm="64" time="10:10:02.47 PM"/>\n'
            "  </HeartRateVariabilityMetadataList>\n"
            " </Record>\n"
        )
    )
    assert item == {
        "kind": "record",
        "line": 9,
        "type": "HKQuantityTypeIdentifierHeartRateVariabilitySDNN",
        "sourceName": "Jane\u2019s Apple Watch",
        "unit": "ms",
        "startDate": "2023-05-01 22:10:00 -0700",
        "endDate": "2023-05-01 22:11:00 -0700",
        "value": "48.2713",
        "metadata": {},
        "beats": [
            {"bpm": "62", "time": "10:10:01.52 PM"},
            {"bpm": "64", "time": "10:10:02.47 PM"},
        ],
    }


def test_workout_with_statistics_events_and_a_nested_record_read_once() -> None:
    step = (
        'type="HKQuantityTypeIdentifierStepCount" sourceName="Watch" unit="count" '
        'startDate="2023-05-02 07:00:00 -0700" endDate="2023-05-02 07:05:00 -0700" value="700"'
    )
    items = read_all(
        export(
            ' <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30.5" '
            'durationUnit="min" sourceName="Watch" sourceVersion="10.1" '
            'startDate="2023-05-02 07:00:00 -0700" endDate="2023-05-02 07:30:30 -0700">\n'  # 9
            '  <MetadataEntry key="HKIndoorWorkout" value="0"/>\n'
            '  <WorkoutEvent type="HKWorkoutEventTypePause" date="2023-05-02 07:10:00 -0700"/>\n'
            '  <WorkoutActivity startDate="2023-05-02 07:00:00 -0700">\n'
            '   <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" average="1"/>\n'
            "  </WorkoutActivity>\n"
            '  <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" '
            'startDate="2023-05-02 07:00:00 -0700" endDate="2023-05-02 07:30:30 -0700" '
            'sum="305.2" unit="kcal"/>\n'
            '  <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" '
            'startDate="2023-05-02 07:00:00 -0700" endDate="2023-05-02 07:30:30 -0700" '
            'average="151" minimum="95" maximum="182" unit="count/min"/>\n'
            '  <WorkoutRoute sourceName="Watch">\n'
            '   <FileReference path="/workout-routes/route_2023-05-02_7.30am.gpx"/>\n'
            "  </WorkoutRoute>\n"
            f"  <Record {step}/>\n"  # 20: nested, repeated at the top level on line 22
            " </Workout>\n"
            f" <Record {step}/>\n"  # 22
        )
    )
    assert [(i["kind"], i["line"]) for i in items] == [("workout", 9), ("record", 22)]
    assert items[0] == {
        "kind": "workout",
        "line": 9,
        "workoutActivityType": "HKWorkoutActivityTypeRunning",
        "duration": "30.5",
        "durationUnit": "min",
        "sourceName": "Watch",
        "sourceVersion": "10.1",
        "startDate": "2023-05-02 07:00:00 -0700",
        "endDate": "2023-05-02 07:30:30 -0700",
        "metadata": {"HKIndoorWorkout": "0"},
        "statistics": [
            {
                "type": "HKQuantityTypeIdentifierActiveEnergyBurned",
                "startDate": "2023-05-02 07:00:00 -0700",
                "endDate": "2023-05-02 07:30:30 -0700",
                "sum": "305.2",
                "unit": "kcal",
            },
            {
                "type": "HKQuantityTypeIdentifierHeartRate",
                "startDate": "2023-05-02 07:00:00 -0700",
                "endDate": "2023-05-02 07:30:30 -0700",
                "average": "151",
                "minimum": "95",
                "maximum": "182",
                "unit": "count/min",
            },
        ],
        "events": [{"type": "HKWorkoutEventTypePause", "date": "2023-05-02 07:10:00 -0700"}],
    }


def test_blood_pressure_correlation_with_its_members() -> None:
    def member(kind: str, value: int) -> str:
        return (
            f'<Record type="HKQuantityTypeIdentifierBloodPressure{kind}" sourceName="Omron" '
            'unit="mmHg" startDate="2023-06-01 08:00:00 +0100" '
            f'endDate="2023-06-01 08:00:00 +0100" value="{value}"/>'
        )

    items = read_all(
        export(
            ' <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Omron" '
            'startDate="2023-06-01 08:00:00 +0100" endDate="2023-06-01 08:00:00 +0100">\n'  # 9
            '  <MetadataEntry key="HKWasUserEntered" value="0"/>\n'
            f"  {member('Systolic', 121)}\n"  # 11
            f"  {member('Diastolic', 79)}\n"  # 12
            " </Correlation>\n"
            f" {member('Systolic', 121)}\n"  # 14: the top-level copies real exports also have
            f" {member('Diastolic', 79)}\n"  # 15
        )
    )
    assert [(i["kind"], i["line"]) for i in items] == [
        ("correlation", 9),
        ("record", 14),
        ("record", 15),
    ]
    systolic = {
        "kind": "record",
        "line": 11,
        "type": "HKQuantityTypeIdentifierBloodPressureSystolic",
        "sourceName": "Omron",
        "unit": "mmHg",
        "startDate": "2023-06-01 08:00:00 +0100",
        "endDate": "2023-06-01 08:00:00 +0100",
        "value": "121",
        "metadata": {},
    }
    assert items[0] == {
        "kind": "correlation",
        "line": 9,
        "type": "HKCorrelationTypeIdentifierBloodPressure",
        "sourceName": "Omron",
        "startDate": "2023-06-01 08:00:00 +0100",
        "endDate": "2023-06-01 08:00:00 +0100",
        "metadata": {"HKWasUserEntered": "0"},
        "records": [
            systolic,
            {
                **systolic,
                "line": 12,
                "type": "HKQuantityTypeIdentifierBloodPressureDiastolic",
                "value": "79",
            },
        ],
    }
    assert items[1] == {**systolic, "line": 14}


# --- refused and broken files --------------------------------------------------------------------


def test_an_entity_expansion_bomb_is_refused_before_anything_is_expanded() -> None:
    bomb = (
        '<?xml version="1.0"?>\n'  # 1
        "<!DOCTYPE HealthData [\n"  # 2
        '<!ENTITY lol "lol">\n'  # 3
        + "".join(
            f'<!ENTITY lol{n} "{("&lol" + str(n - 1 or "") + ";") * 10}">\n' for n in range(1, 10)
        )
        + "]>\n"
        '<HealthData locale="en_US">\n'
        ' <Record type="&lol9;" sourceName="x" startDate="a" endDate="b"/>\n'
    )
    with pytest.raises(ExportError) as raised:
        read_all(export("", header=bomb))
    assert raised.value.line == 3
    assert "declares entities" in raised.value.reason


def test_an_entity_used_without_a_declaration_is_an_error_not_text() -> None:
    with pytest.raises(ExportError) as raised:
        read_all(
            export(' <Record type="&xxe;" sourceName="x" startDate="a" endDate="b"/>\n')  # 9
        )
    assert raised.value.line == 9
    assert "xxe" in raised.value.reason


def test_a_truncated_file_yields_what_was_read_then_says_where_it_stopped() -> None:
    steps = (
        ' <Record type="HKQuantityTypeIdentifierStepCount" sourceName="iPhone" unit="count" '
        'startDate="2024-01-01 10:00:00 +0000" endDate="2024-01-01 10:05:00 +0000" value="{}"/>\n'
    )
    data = (HEADER + steps.format(1) + steps.format(2) + steps.format(3)).encode()
    cut = data[: data.rindex(b'sourceName="iPhone"') + 10]  # inside line 11's attribute
    items: list[dict[str, Any]] = []
    with pytest.raises(ExportError) as raised:
        for item in read_export(io.BytesIO(cut)):
            items.append(item)
    assert [(i["line"], i["value"]) for i in items] == [(9, "1"), (10, "2")]
    assert raised.value.line == 11


def test_a_control_character_stops_the_file_at_its_line() -> None:
    record = (
        ' <Record type="HKQuantityTypeIdentifierBodyMass" sourceName="{}" unit="kg" '
        'startDate="2024-01-01 08:00:00 +0000" endDate="2024-01-01 08:00:00 +0000" value="70"/>\n'
    )
    body = record.format("Scale") + record.format("Sca\x0ble") + record.format("Scale")
    items: list[dict[str, Any]] = []
    with pytest.raises(ExportError) as raised:
        for item in read_export(export(body)):
            items.append(item)
    assert [i["line"] for i in items] == [9]
    assert raised.value.line == 10
    assert "invalid character" in raised.value.reason
    assert str(raised.value).startswith("line 10: ")


def test_a_file_that_is_not_a_health_export_is_refused() -> None:
    with pytest.raises(ExportError) as raised:
        read_all(
            io.BytesIO(b'<?xml version="1.0"?>\n<ClinicalDocument>\n<Record/>\n</ClinicalDocument>')
        )
    assert "ClinicalDocument" in raised.value.reason


def test_an_export_without_a_doctype_reads_the_same() -> None:
    [item] = read_all(
        io.BytesIO(
            b'<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_US">\n'
            b' <ActivitySummary dateComponents="2024-01-01" appleStandHours="9"/>\n'  # 3
            b"</HealthData>\n"
        )
    )
    assert item == {
        "kind": "activity_summary",
        "line": 3,
        "dateComponents": "2024-01-01",
        "appleStandHours": "9",
    }


def test_a_doctype_that_never_ends_is_refused_without_reading_on() -> None:
    endless = b"<?xml version='1.0'?>\n<!DOCTYPE HealthData [\n" + b"<!-- padding -->\n" * 100_000
    with pytest.raises(ExportError) as raised:
        read_all(io.BytesIO(endless + b"]>\n<HealthData/>\n"))
    assert "longer than" in raised.value.reason


def test_a_stream_that_returns_a_few_bytes_per_read_gives_the_same_items() -> None:
    class Trickle(io.BytesIO):
        """A stream (a socket, a zip member) that hands out less than it was asked for."""

        def read(self, size: int | None = -1) -> bytes:
            return super().read(7)

    data = SAMPLE.read_bytes()
    trickled = list(read_export(Trickle(data)))
    assert trickled == read_all(io.BytesIO(data))


# --- the fake-export generator -------------------------------------------------------------------


def test_the_generators_output_parses(tmp_path: Path) -> None:
    out = tmp_path / "export.xml"
    done = subprocess.run(
        [sys.executable, str(GENERATOR), str(out), "--records", "2000"],
        capture_output=True,
        text=True,
        check=True,
    )
    generated = int(re.search(r": (\d+) records", done.stderr).group(1))  # type: ignore[union-attr]
    text = out.read_text()
    with out.open("rb") as stream:
        items = list(read_export(stream))
    kinds = Counter(item["kind"] for item in items)
    # top-level elements are indented by one space, correlation members by two
    assert kinds == {
        "record": text.count("\n <Record "),
        "correlation": text.count("\n <Correlation "),
        "workout": text.count("\n <Workout "),
        "activity_summary": text.count("\n <ActivitySummary "),
    }
    members = sum(len(item["records"]) for item in items if item["kind"] == "correlation")
    assert members == 2 * kinds["correlation"] == text.count("\n  <Record ")
    # the generator counts a correlation's two members, not the correlation
    assert generated == kinds["record"] + members + kinds["workout"] + kinds["activity_summary"]
    assert all(len(i["beats"]) == 5 for i in items if i.get("type", "").endswith("SDNN"))
    assert all(len(i["statistics"]) == 3 for i in items if i["kind"] == "workout")
