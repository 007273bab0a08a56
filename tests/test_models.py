"""Unit tests of the pure domain: validation, normalisation, and the update rules."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from opstatus.errors import InvalidInput, ProgressRegression, TerminalStatusFinal
from opstatus.models import (
    CANCELED,
    FAILED,
    IN_PROGRESS,
    ORJSON_MAX_DEPTH,
    SUCCEEDED,
    Operation,
    OperationDraft,
    OperationUpdate,
    apply_update,
    clip_json,
    format_time,
    is_terminal,
    new_operation_id,
    normalize_location,
    normalize_status,
    operation_key,
    parse_time,
    validate_error,
    validate_http_status_code,
    validate_json_object,
    validate_operation_id,
    validate_percent,
    validate_subscription_id,
)

SUB = "e7b5a9d2-6b6a-4d2f-9143-20d9a10f5b8f"
NOW = "2024-05-01T10:00:00.000Z"
LATER = "2024-05-01T10:05:00.500Z"
ETAG = re.compile(r"[0-9a-f]{16}\Z")


# --- statuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Succeeded", SUCCEEDED),
        ("succeeded", SUCCEEDED),
        ("SUCCEEDED", SUCCEEDED),
        ("sUcCeEdEd", SUCCEEDED),
        ("failed", FAILED),
        ("FAILED", FAILED),
        ("canceled", CANCELED),
        ("CANCELED", CANCELED),
        ("inprogress", IN_PROGRESS),
        ("INPROGRESS", IN_PROGRESS),
        ("InProgress", IN_PROGRESS),
    ],
)
def test_normalize_status_known_words_ignore_case(given: str, expected: str) -> None:
    assert normalize_status(given) == expected


@pytest.mark.parametrize("given", ["Provisioning", "Deleting", "Updating2", "A", "X" * 64])
def test_normalize_status_accepts_pascal_case_custom_words(given: str) -> None:
    result = normalize_status(given)
    assert result == given
    assert not is_terminal(result)


@pytest.mark.parametrize("given", ["Cancelled", "cancelled", "CANCELLED"])
def test_normalize_status_refuses_cancelled(given: str) -> None:
    with pytest.raises(InvalidInput, match="Canceled") as info:
        normalize_status(given, target="properties.status")
    assert info.value.target == "properties.status"
    assert info.value.code == "InvalidRequestContent"


@pytest.mark.parametrize(
    "given",
    [
        "",
        "provisioning",
        "In Progress",
        "Succeeded ",
        " Succeeded",
        "Succeeded\n",
        "Running!",
        "Über",
        "X" * 65,
        "1Running",
        "Done\x00",
        "x' OR '1'='1",
        None,
        1,
        True,
        ["Succeeded"],
    ],
)
def test_normalize_status_refuses_garbage(given: object) -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_status(given)
    assert info.value.target == "status"


def test_is_terminal() -> None:
    assert [
        s for s in (SUCCEEDED, FAILED, CANCELED, IN_PROGRESS, "Provisioning") if is_terminal(s)
    ] == [
        SUCCEEDED,
        FAILED,
        CANCELED,
    ]


# --- identifiers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (SUB, SUB),
        (SUB.upper(), SUB),
        ("00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"),
    ],
)
def test_validate_subscription_id_accepts_guids_lowercased(given: str, expected: str) -> None:
    assert validate_subscription_id(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "not-a-guid",
        "{" + SUB + "}",
        SUB.replace("-", ""),
        SUB + "\n",
        SUB + "0",
        SUB[:-1] + "g",
        " " + SUB,
        "x" * 36,
    ],
)
def test_validate_subscription_id_refuses_non_guids(given: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_subscription_id(given)
    assert info.value.code == "InvalidSubscriptionId"
    assert info.value.target == "subscriptionId"


@pytest.mark.parametrize(
    "given",
    [
        "op1",
        "7",
        SUB,
        SUB.upper(),
        "dGVzdA==",
        "a+b=c",
        "YWJj+ZGVm+Z2hp==",
        "a.b_c~d:e@f-g",
        "a" * 256,
    ],
)
def test_validate_operation_id_accepts(given: str) -> None:
    assert validate_operation_id(given) == given  # case is kept; keys ignore it


@pytest.mark.parametrize(
    "given",
    [
        "",
        "a" * 257,
        "a" * 5000,
        "x' OR '1'='1",
        "1; DROP TABLE operations",
        "a/b",
        "a\\b",
        "../etc/passwd",
        "Zm9v/YmFy==",
        "op%2F1",
        "op 1",
        "op\n",
        "op\x00",
        "op\t1",
        "op\x7f",
        "-leading-dash",
        ".hidden",
        "+plus",
        "opé",
        "op<1>",
        'op"1',
        "op?x=1",
        "op#1",
    ],
)
def test_validate_operation_id_refuses(given: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_operation_id(given)
    assert info.value.code == "InvalidOperationId"
    assert info.value.target == "operationId"
    # The echoed id is bounded and printable.
    assert len(info.value.message) < 400
    assert all(c.isprintable() for c in info.value.message)


def test_operation_key_ignores_case() -> None:
    assert operation_key("Op-ABC") == operation_key("op-abc") == operation_key("OP-ABC") == "op-abc"
    assert operation_key("op-1") != operation_key("op-2")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("West US", "westus"),
        ("westus", "westus"),
        ("WESTUS", "westus"),
        ("East US 2", "eastus2"),
        ("westeurope", "westeurope"),
    ],
)
def test_normalize_location(given: str, expected: str) -> None:
    assert normalize_location(given) == expected


@pytest.mark.parametrize(
    "given", ["", "   ", "west-us", "West%20US", "west_us", "westus/..", "x" * 65, "Zürich"]
)
def test_normalize_location_refuses(given: str) -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_location(given)
    assert info.value.code == "InvalidLocation"
    assert info.value.target == "location"


# --- times -------------------------------------------------------------------------------


def test_parse_time_round_trips_the_arm_example_exactly() -> None:
    assert parse_time("2017-01-01T13:13:13.933Z", "startTime") == "2017-01-01T13:13:13.933Z"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2017-01-01T15:13:13.933+02:00", "2017-01-01T13:13:13.933Z"),
        ("2017-01-01T13:13:13.933+00:00", "2017-01-01T13:13:13.933Z"),
        ("2016-12-31T23:30:00-01:00", "2017-01-01T00:30:00.000Z"),
        ("2017-01-01T05:45:00+05:45", "2017-01-01T00:00:00.000Z"),
        ("2017-01-01T13:13:13", "2017-01-01T13:13:13.000Z"),
        ("2017-01-01T13:13:13.5", "2017-01-01T13:13:13.500Z"),
        ("2017-01-01T13:13:13.123456Z", "2017-01-01T13:13:13.123Z"),
        ("2017-01-01T13:13:13.999999Z", "2017-01-01T13:13:13.999Z"),
    ],
)
def test_parse_time_converts_to_utc_millis(given: str, expected: str) -> None:
    assert parse_time(given, "endTime") == expected


@pytest.mark.parametrize(
    "given",
    [
        "yesterday",
        "",
        "2017",
        "2017-13-01T00:00:00Z",
        "2017-01-32T00:00:00Z",
        "2017-01-01T25:00:00Z",
        "01/02/2017 10:00",
        "2017-01-01T13:13:13.933Z" + " " * 20,
        "x" * 41,
        None,
        1483276393,
        1483276393.933,
        datetime(2017, 1, 1, tzinfo=UTC),
    ],
)
def test_parse_time_refuses_garbage(given: object) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_time(given, "startTime")
    assert info.value.target == "startTime"


@pytest.fixture
def local_time_far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with a local time zone of UTC+9, so 'naive means local' cannot pass for UTC."""
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_far_from_utc")
def test_parse_time_naive_means_utc_whatever_the_local_zone() -> None:
    assert time.localtime(0).tm_hour == 9  # the fixture took effect
    assert parse_time("2017-01-01T13:13:13.933", "startTime") == "2017-01-01T13:13:13.933Z"
    assert parse_time("2017-01-01T13:13:13.933Z", "startTime") == "2017-01-01T13:13:13.933Z"


def test_format_time() -> None:
    moment = datetime(2017, 1, 1, 13, 13, 13, 933999, tzinfo=UTC)
    assert format_time(moment) == "2017-01-01T13:13:13.933Z"
    east = timezone(timedelta(hours=9))
    assert format_time(datetime(2017, 1, 1, 0, 0, 0, tzinfo=east)) == "2016-12-31T15:00:00.000Z"


@pytest.mark.parametrize(
    ("year", "text"), [(1, "0001"), (5, "0005"), (42, "0042"), (999, "0999"), (9999, "9999")]
)
def test_format_time_writes_the_year_in_four_digits(year: int, text: str) -> None:
    moment = datetime(year, 6, 1, 0, 0, 0, tzinfo=UTC)
    assert format_time(moment) == f"{text}-06-01T00:00:00.000Z"
    assert parse_time(f"{text}-06-01T00:00:00Z", "startTime") == f"{text}-06-01T00:00:00.000Z"


def test_formatted_times_order_as_text_as_in_time() -> None:
    moments = [datetime(y, 1, 1, tzinfo=UTC) for y in (1, 9, 10, 99, 100, 999, 1000, 9999)]
    assert sorted(format_time(m) for m in moments) == [format_time(m) for m in moments]


# --- percent and error -------------------------------------------------------------------


@pytest.mark.parametrize(("given", "expected"), [(0, 0.0), (100, 100.0), (42.5, 42.5), (7, 7.0)])
def test_validate_percent_accepts(given: float, expected: float) -> None:
    result = validate_percent(given)
    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize(
    "given",
    [True, False, 250, 100.0001, -1, -0.5, math.nan, math.inf, -math.inf, "50", None, [50]],
)
def test_validate_percent_refuses(given: object) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_percent(given)
    assert info.value.target == "percentComplete"


def test_validate_error_minimal_gets_empty_message() -> None:
    assert validate_error({"code": "BadThing"}) == {"code": "BadThing", "message": ""}


def test_validate_error_keeps_full_nested_error() -> None:
    error = {
        "code": "Outer",
        "message": "outer – ünïcode 🚀\nsecond line\ttab",
        "target": "properties.sku",
        "details": [
            {"code": "Inner.One", "message": "one", "details": [{"code": "Deep_1"}]},
            {"code": "Inner-Two", "message": "two", "target": "x"},
        ],
        "additionalInfo": [
            {"type": "PolicyViolation", "info": {"policy": "p", "nested": {"a": [1, 2]}}},
            {"type": "Bare"},
            {},
        ],
    }
    expected = {
        **error,
        "details": [
            {
                "code": "Inner.One",
                "message": "one",
                "details": [{"code": "Deep_1", "message": ""}],
            },
            {"code": "Inner-Two", "message": "two", "target": "x"},
        ],
    }
    assert validate_error(error) == expected


def nested_error(levels: int) -> dict:
    error: dict = {"code": "Leaf"}
    for _ in range(levels):
        error = {"code": "Level", "details": [error]}
    return error


def test_validate_error_depth_limit() -> None:
    validated = validate_error(nested_error(8))
    depth = 0
    while "details" in validated:
        validated = validated["details"][0]
        depth += 1
    assert depth == 8 and validated == {"code": "Leaf", "message": ""}
    with pytest.raises(InvalidInput, match="nested too deeply"):
        validate_error(nested_error(9))


@pytest.mark.parametrize(
    ("error", "target"),
    [
        ("Failed", "error"),
        (None, "error"),
        ({}, "error.code"),
        ({"message": "no code"}, "error.code"),
        ({"code": ""}, "error.code"),
        ({"code": "Has Space"}, "error.code"),
        ({"code": "1Digit"}, "error.code"),
        ({"code": "C" * 129}, "error.code"),
        ({"code": 500}, "error.code"),
        ({"code": "X", "message": 1}, "error.message"),
        ({"code": "X", "message": "m" * 8193}, "error.message"),
        ({"code": "X", "message": "bell\x07"}, "error.message"),
        ({"code": "X", "target": "t" * 1025}, "error.target"),
        ({"code": "X", "details": {"code": "Y"}}, "error.details"),
        ({"code": "X", "details": [{"code": "Y"}] * 101}, "error.details"),
        ({"code": "X", "details": [{"code": "bad code"}]}, "error.details[0].code"),
        ({"code": "X", "details": [{"code": "Y"}, "nope"]}, "error.details[1]"),
        ({"code": "X", "additionalInfo": {}}, "error.additionalInfo"),
        ({"code": "X", "additionalInfo": [{"type": 1}]}, "error.additionalInfo[0]"),
        ({"code": "X", "additionalInfo": [{"info": []}]}, "error.additionalInfo[0]"),
        ({"code": "X", "additionalInfo": [{"type": "T", "x": 1}]}, "error.additionalInfo[0]"),
        ({"code": "X", "severity": "high"}, "error.severity"),
    ],
)
def test_validate_error_refuses(error: object, target: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_error(error)
    assert info.value.target == target


def deep(levels: int, make: type = dict) -> object:
    """``levels`` nested objects (or arrays), the innermost empty."""
    value: object = make()
    for _ in range(levels - 1):
        value = {"k": value} if make is dict else [value]
    return value


@pytest.mark.parametrize("make", [dict, list])
def test_validate_json_object_bounds_the_depth(make: type) -> None:
    ok = {"k": deep(63, make)}
    assert validate_json_object(ok, "properties") is ok
    with pytest.raises(InvalidInput, match="nested more than 64 levels deep") as info:
        validate_json_object({"k": deep(64, make)}, "properties")
    assert info.value.target == "properties"


def test_orjson_writes_254_levels_and_no_more() -> None:
    """validate_json_object's depth check counts on it (models.ORJSON_MAX_DEPTH)."""
    assert orjson.dumps(deep(254, list)) == b"[" * 254 + b"]" * 254
    with pytest.raises(orjson.JSONEncodeError, match="^Recursion limit reached$"):
        orjson.dumps(deep(255, list))
    assert ORJSON_MAX_DEPTH == 254


def test_validate_json_object_bounds_the_size() -> None:
    assert validate_json_object({"s": "x" * (1024 * 1024 - 8)}, "properties")  # 1 MiB exactly
    with pytest.raises(InvalidInput, match="larger than 1048576 bytes"):
        validate_json_object({"s": "x" * (1024 * 1024 - 7)}, "properties")


@pytest.mark.parametrize(
    "value", [[], "x", None, {"k": {1, 2}}, {1: "non-string key"}, {"k": "\ud800"}]
)
def test_validate_json_object_refuses_what_is_not_a_json_object(value: object) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_json_object(value, "properties")
    assert info.value.target == "properties"


def test_validate_error_bounds_the_whole_error_with_its_additional_info() -> None:
    """error, additionalInfo, the item, info: 61 levels of info make 64 in all."""
    ok = {"code": "X", "additionalInfo": [{"type": "T", "info": deep(61)}]}
    assert validate_error(ok)["additionalInfo"] == ok["additionalInfo"]
    too_deep = {"code": "X", "additionalInfo": [{"type": "T", "info": deep(62)}]}
    with pytest.raises(InvalidInput, match="nested more than 64") as info:
        validate_error(too_deep)
    assert info.value.target == "error"
    big = {"code": "X", "additionalInfo": [{"type": "T", "info": {"s": "x" * 1024 * 1024}}]}
    with pytest.raises(InvalidInput, match="larger than"):
        validate_error(big)


def test_clip_json_cuts_below_the_limit_and_keeps_the_rest() -> None:
    value = {"a": [1, {"b": {"c": "d"}}], "e": "f", "g": []}
    assert clip_json(value, 4) == value
    assert clip_json(value, 3) == {"a": [1, {"b": None}], "e": "f", "g": []}
    assert clip_json(value, 1) == {"a": None, "e": "f", "g": None}
    assert clip_json(value, 0) is None
    assert clip_json(["t", ["u"]], 1) == ["t", None]
    assert clip_json("scalar", 0) == "scalar"
    clipped = clip_json(deep(1000))
    levels = 0
    while isinstance(clipped, dict):
        clipped, levels = clipped["k"], levels + 1
    assert levels == 64 and clipped is None


# --- creating --------------------------------------------------------------------------


def draft(**fields: object) -> OperationDraft:
    values: dict[str, object] = {
        "subscription_id": SUB,
        "operation_id": "Op-1",
        "namespace": "Microsoft.Cache",
        "location": "westus",
    }
    values.update(fields)
    return OperationDraft(**values)  # type: ignore[arg-type]


def test_to_operation_defaults_for_in_progress() -> None:
    d = draft(properties={"a": 1})
    op = d.to_operation(NOW)
    assert (op.subscription_id, op.operation_id, op.namespace, op.location) == (
        SUB,
        "Op-1",
        "Microsoft.Cache",
        "westus",
    )
    assert op.key == "op-1"
    assert op.status == IN_PROGRESS and not op.terminal
    assert op.start_time == NOW
    assert op.end_time is None
    assert op.percent_complete is None
    assert op.error is None
    assert op.properties == {"a": 1}
    assert op.created_at == op.updated_at == NOW
    assert op.create_digest == d.digest()
    assert ETAG.match(op.etag)


def test_to_operation_keeps_given_times() -> None:
    op = draft(status=SUCCEEDED, start_time="2017-01-01T13:13:13.933Z", end_time=LATER)
    result = op.to_operation(NOW)
    assert result.start_time == "2017-01-01T13:13:13.933Z"
    assert result.end_time == LATER


def test_to_operation_succeeded_sets_end_time_and_full_progress() -> None:
    op = draft(status=SUCCEEDED, percent_complete=40.0).to_operation(NOW)
    assert op.terminal
    assert op.end_time == NOW
    assert op.percent_complete == 100.0
    assert op.error is None


@pytest.mark.parametrize(
    ("status", "code"), [(FAILED, "OperationFailed"), (CANCELED, "OperationCanceled")]
)
def test_to_operation_fills_default_error(status: str, code: str) -> None:
    op = draft(status=status, percent_complete=30.0).to_operation(NOW)
    assert op.end_time == NOW
    assert op.error is not None and op.error["code"] == code and op.error["message"]
    assert op.percent_complete == 30.0


def test_to_operation_keeps_given_error() -> None:
    error = {"code": "QuotaExceeded", "message": "No quota."}
    assert draft(status=FAILED, error=error).to_operation(NOW).error == error


@pytest.mark.parametrize("status", [IN_PROGRESS, "Provisioning"])
def test_to_operation_refuses_end_time_with_non_terminal_status(status: str) -> None:
    """The same rule as for updates: only a terminal operation has an end time."""
    with pytest.raises(InvalidInput) as info:
        draft(status=status, end_time=LATER).to_operation(NOW)
    assert info.value.target == "endTime"


@pytest.mark.parametrize("status", [IN_PROGRESS, SUCCEEDED, "Provisioning"])
def test_to_operation_refuses_error_with_non_failed_status(status: str) -> None:
    with pytest.raises(InvalidInput) as info:
        draft(status=status, error={"code": "X", "message": ""}).to_operation(NOW)
    assert info.value.target == "error"


def test_draft_digest_ignores_operation_id_case_but_not_content() -> None:
    assert draft(operation_id="OP-1").digest() == draft(operation_id="op-1").digest()
    assert draft().digest() != draft(properties={"a": 1}).digest()
    assert draft().digest() != draft(status=SUCCEEDED).digest()
    assert (
        draft(properties={"a": 1, "b": 2}).digest() == draft(properties={"b": 2, "a": 1}).digest()
    )


def test_draft_digest_of_a_create_without_http_status_code_is_unchanged() -> None:
    """Creates stored before httpStatusCode existed must still recognise their replays."""
    d = draft(status=FAILED, properties={"a": 1})
    fields = dataclasses.asdict(d)
    later_fields = ("http_status_code", "kind", "cancelable", "lease_seconds")
    for later in (*later_fields, "callback_url", "callback_events"):
        del fields[later]
    fields["operation_id"] = "op-1"
    before = hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    assert d.digest() == before
    assert draft(status=FAILED, properties={"a": 1}, http_status_code=409).digest() != before
    with_callback = draft(status=FAILED, properties={"a": 1}, callback_url="https://x.io/cb")
    assert with_callback.digest() != before
    assert dataclasses.replace(
        with_callback, callback_events=frozenset({"status"})
    ).digest() not in (
        before,
        with_callback.digest(),
    )


def test_to_operation_keeps_http_status_code() -> None:
    assert draft(status=FAILED, http_status_code=409).to_operation(NOW).http_status_code == 409
    assert draft().to_operation(NOW).http_status_code is None


@pytest.mark.parametrize("given", [100, 200, 202, 409, 599])
def test_validate_http_status_code_accepts(given: int) -> None:
    assert validate_http_status_code(given) == given


def test_a_whole_number_written_with_a_point_is_that_integer() -> None:
    """JSON has one kind of number, and JSON Schema's integer (what the OpenAPI document
    says) is any whole one."""
    assert validate_http_status_code(409.0) == 409
    assert type(validate_http_status_code(409.0)) is int


@pytest.mark.parametrize("given", [99, 600, 0, -200, 200.5, 600.0, "200", True, None, [200]])
def test_validate_http_status_code_refuses(given: object) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_http_status_code(given)
    assert info.value.target == "httpStatusCode"
    assert info.value.message == "'httpStatusCode' must be an integer from 100 to 599."


# --- updating ----------------------------------------------------------------------------


def current(**fields: object) -> Operation:
    values: dict[str, object] = {
        "subscription_id": SUB,
        "operation_id": "Op-1",
        "namespace": "Microsoft.Cache",
        "location": "westus",
        "status": IN_PROGRESS,
        "start_time": NOW,
        "etag": "0000000000000000",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return Operation(**values)  # type: ignore[arg-type]


def test_update_progress() -> None:
    op = current(percent_complete=30.0)
    new = apply_update(op, OperationUpdate(percent_complete=50.0), LATER)
    assert new is not None
    assert new.percent_complete == 50.0
    assert new.status == IN_PROGRESS and new.end_time is None
    assert new.updated_at == LATER and new.created_at == NOW
    assert new.etag != op.etag and ETAG.match(new.etag)
    assert op.percent_complete == 30.0  # the current value is untouched


@pytest.mark.parametrize(
    "update",
    [
        OperationUpdate(),
        OperationUpdate(status=IN_PROGRESS),
        OperationUpdate(percent_complete=30.0),
        OperationUpdate(properties={"a": 1}),
        OperationUpdate(status=IN_PROGRESS, percent_complete=30.0, properties={"a": 1}),
    ],
)
def test_update_that_changes_nothing_returns_none(update: OperationUpdate) -> None:
    assert apply_update(current(percent_complete=30.0, properties={"a": 1}), update, LATER) is None


def test_progress_cannot_go_down_unless_reset() -> None:
    op = current(percent_complete=50.0)
    with pytest.raises(ProgressRegression) as info:
        apply_update(op, OperationUpdate(percent_complete=49.9), LATER)
    assert info.value.target == "percentComplete"
    reset = apply_update(op, OperationUpdate(percent_complete=10.0, reset_progress=True), LATER)
    assert reset is not None and reset.percent_complete == 10.0
    up = apply_update(op, OperationUpdate(percent_complete=60.0, reset_progress=True), LATER)
    assert up is not None and up.percent_complete == 60.0


def test_custom_status_change_is_not_terminal() -> None:
    new = apply_update(current(), OperationUpdate(status="Provisioning"), LATER)
    assert new is not None
    assert new.status == "Provisioning"
    assert new.end_time is None and new.error is None


def test_end_time_refused_without_terminal_status() -> None:
    with pytest.raises(InvalidInput) as info:
        apply_update(current(), OperationUpdate(end_time=LATER), LATER)
    assert info.value.target == "endTime"


def test_error_refused_without_failed_status() -> None:
    with pytest.raises(InvalidInput) as info:
        apply_update(current(), OperationUpdate(error={"code": "X", "message": ""}), LATER)
    assert info.value.target == "error"
    with pytest.raises(InvalidInput):
        apply_update(
            current(),
            OperationUpdate(status=SUCCEEDED, error={"code": "X", "message": ""}),
            LATER,
        )


def test_succeeded_sets_end_time_and_full_progress() -> None:
    new = apply_update(current(percent_complete=42.0), OperationUpdate(status=SUCCEEDED), LATER)
    assert new is not None
    assert new.status == SUCCEEDED
    assert new.percent_complete == 100.0
    assert new.end_time == LATER
    assert new.error is None


def test_terminal_update_keeps_given_end_time() -> None:
    end = "2024-05-01T10:04:00.000Z"
    new = apply_update(current(), OperationUpdate(status=CANCELED, end_time=end), LATER)
    assert new is not None and new.end_time == end


def test_update_refuses_an_end_before_the_stored_start() -> None:
    before = "2024-05-01T09:59:59.999Z"
    with pytest.raises(InvalidInput, match="is before the operation's 'startTime'") as info:
        apply_update(current(), OperationUpdate(status=SUCCEEDED, end_time=before), LATER)
    assert info.value.target == "endTime"
    new = apply_update(current(), OperationUpdate(status=SUCCEEDED, end_time=NOW), LATER)
    assert new is not None and new.end_time == new.start_time == NOW


def test_update_ends_no_earlier_than_a_start_ahead_of_the_clock() -> None:
    new = apply_update(current(start_time=LATER), OperationUpdate(status=FAILED), NOW)
    assert new is not None and new.end_time == LATER


def test_to_operation_refuses_an_end_before_the_start() -> None:
    with pytest.raises(InvalidInput, match="is before") as info:
        draft(status=SUCCEEDED, start_time=LATER, end_time=NOW).to_operation(NOW)
    assert info.value.target == "endTime"


def test_to_operation_fills_in_times_on_the_right_side_of_the_given_one() -> None:
    ahead = draft(status=SUCCEEDED, start_time=LATER).to_operation(NOW)
    assert ahead.end_time == LATER
    behind = draft(status=SUCCEEDED, end_time="2020-01-01T00:00:00.000Z").to_operation(NOW)
    assert behind.start_time == "2020-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("status", "code"), [(FAILED, "OperationFailed"), (CANCELED, "OperationCanceled")]
)
def test_failed_and_canceled_get_default_error(status: str, code: str) -> None:
    new = apply_update(current(percent_complete=42.0), OperationUpdate(status=status), LATER)
    assert new is not None
    assert new.status == status
    assert new.end_time == LATER
    assert new.error is not None and new.error["code"] == code
    assert new.percent_complete == 42.0


def test_failed_keeps_given_error() -> None:
    error = {"code": "QuotaExceeded", "message": "No quota."}
    new = apply_update(current(), OperationUpdate(status=FAILED, error=error), LATER)
    assert new is not None and new.error == error


def terminal(status: str, **update: object) -> Operation:
    op = apply_update(current(percent_complete=20.0), OperationUpdate(status=status, **update), NOW)
    assert op is not None and op.terminal
    return op


@pytest.mark.parametrize(
    ("status", "update"),
    [
        (SUCCEEDED, OperationUpdate(status=FAILED)),
        (SUCCEEDED, OperationUpdate(status=IN_PROGRESS)),
        (SUCCEEDED, OperationUpdate(status="Provisioning")),
        (SUCCEEDED, OperationUpdate(properties={"late": True})),
        (SUCCEEDED, OperationUpdate(end_time=LATER)),
        (FAILED, OperationUpdate(status=SUCCEEDED)),
        (FAILED, OperationUpdate(status=CANCELED)),
        (FAILED, OperationUpdate(status=FAILED, error={"code": "Other", "message": ""})),
        (FAILED, OperationUpdate(percent_complete=90.0)),
        (CANCELED, OperationUpdate(status=SUCCEEDED)),
        (CANCELED, OperationUpdate(status=IN_PROGRESS, percent_complete=0.0, reset_progress=True)),
    ],
)
def test_terminal_status_is_final(status: str, update: OperationUpdate) -> None:
    with pytest.raises(TerminalStatusFinal) as info:
        apply_update(terminal(status), update, LATER)
    assert info.value.code == "OperationAlreadyTerminal"


def test_terminal_status_is_final_even_for_lower_progress() -> None:
    """A terminal operation refuses every change with TerminalStatusFinal, not another 409
    whose advice ('set resetProgress') would only lead to TerminalStatusFinal."""
    with pytest.raises(TerminalStatusFinal):
        apply_update(terminal(FAILED), OperationUpdate(percent_complete=5.0), LATER)


@pytest.mark.parametrize(
    ("status", "update"),
    [
        (SUCCEEDED, {}),
        (SUCCEEDED, {"percent_complete": 100.0}),
        (FAILED, {}),
        (FAILED, {"error": {"code": "QuotaExceeded", "message": "No quota."}}),
        (CANCELED, {}),
        (CANCELED, {"end_time": "2024-05-01T10:01:00.000Z"}),
    ],
)
def test_replay_of_identical_terminal_update_returns_none(status: str, update: dict) -> None:
    first = OperationUpdate(status=status, **update)
    done = apply_update(current(percent_complete=20.0), first, NOW)
    assert done is not None and done.terminal
    assert apply_update(done, first, LATER) is None
    # Lower-case spelling of the status, once normalised, is the same replay.
    assert (
        apply_update(
            done, OperationUpdate(status=normalize_status(status.lower()), **update), LATER
        )
        is None
    )


def test_update_sets_http_status_code_with_or_before_the_terminal_status() -> None:
    early = apply_update(current(), OperationUpdate(http_status_code=201), LATER)
    assert early is not None and early.http_status_code == 201 and not early.terminal
    done = apply_update(current(), OperationUpdate(status=FAILED, http_status_code=409), LATER)
    assert done is not None and done.http_status_code == 409 and done.status == FAILED
    assert apply_update(done, OperationUpdate(http_status_code=409), LATER) is None
    with pytest.raises(TerminalStatusFinal):
        apply_update(done, OperationUpdate(http_status_code=500), LATER)


def test_etag_changes_on_every_real_change() -> None:
    op = current(percent_complete=0.0)
    etags = [op.etag]
    for update in (
        OperationUpdate(percent_complete=10.0),
        OperationUpdate(properties={"step": 1}),
        OperationUpdate(status="Provisioning"),
        OperationUpdate(percent_complete=20.0, properties={"step": 2}),
        OperationUpdate(status=FAILED),
    ):
        new = apply_update(op, update, LATER)
        assert new is not None
        etags.append(new.etag)
        op = new
    assert len(set(etags)) == len(etags)
    assert all(ETAG.match(e) for e in etags[1:])
    # ... and not on a non-change.
    assert apply_update(op, OperationUpdate(status=FAILED), LATER) is None


# --- ids -----------------------------------------------------------------------------------


def test_new_operation_id_is_uuid_v7() -> None:
    before = time.time_ns() // 1_000_000
    text = new_operation_id()
    after = time.time_ns() // 1_000_000
    value = uuid.UUID(text)
    assert str(value) == text  # canonical, lower-case form
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after  # 48-bit Unix milliseconds
    validate_operation_id(text)


def test_new_operation_ids_are_unique_and_time_ordered() -> None:
    assert len({new_operation_id() for _ in range(2000)}) == 2000
    ids = []
    for _ in range(6):
        ids.append(new_operation_id())
        time.sleep(0.003)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    stamps = [uuid.UUID(i).int >> 80 for i in ids]
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))
