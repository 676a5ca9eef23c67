"""Failure fingerprints: classes only, never messages; bounded whatever the messages hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.fingerprint import UNKNOWN, fingerprint, java_class
from simulator.connect.state import connector_trace, java_trace, task_trace
from tests.support.traces import BAD_JSON_TRACE, CONNECT_EXC, DATA_EXC, FILE_TRACE, JSON_PARSE, SER_EXC


def test_first_line_and_last_caused_by() -> None:
    fp = fingerprint(BAD_JSON_TRACE)
    assert (fp.exception, fp.root_cause) == (CONNECT_EXC, JSON_PARSE)
    assert fp.causes == (CONNECT_EXC, DATA_EXC, SER_EXC, JSON_PARSE)
    fp = fingerprint(FILE_TRACE)
    assert (fp.exception, fp.root_cause) == (CONNECT_EXC, "java.nio.file.NoSuchFileException")


def test_reference_example_and_simulator_traces() -> None:
    # The FAILED task of the Connect REST reference's example status.
    ref = (
        f"{CONNECT_EXC}: Exiting WorkerSinkTask due to unrecoverable exception.\n\tat org.apache.kafka.connect."
        "runtime.WorkerSinkTask.deliverMessages(WorkerSinkTask.java:636)\n\t...\nCaused by: java.sql.SQLException:"
        " Connection refused\n\t..."
    )
    assert fingerprint(ref).root_cause == "java.sql.SQLException"
    assert fingerprint(connector_trace()).root_cause == "java.net.ConnectException"
    assert fingerprint(task_trace("source")).root_cause == "org.apache.kafka.common.errors.TimeoutException"


def test_no_cause_means_the_exception_is_its_own_root_cause() -> None:
    fp = fingerprint("java.lang.NullPointerException\n\tat a.B.c(B.java:1)\n")
    assert fp == fingerprint("java.lang.NullPointerException")
    assert (fp.exception, fp.root_cause) == ("java.lang.NullPointerException",) * 2
    assert fingerprint("java.lang.IllegalStateException: x: y: z").exception == "java.lang.IllegalStateException"


def test_nested_classes_and_suppressed_causes() -> None:
    trace = (
        "org.example.Outer$InnerException: boom\n\tat a.B.c(B.java:1)\n"
        "\tSuppressed: java.io.IOException: close failed\n\t\tat a.B.d(B.java:2)\n"
        "\tCaused by: java.lang.ArithmeticException: / by zero\n"  # a suppressed exception's cause
        "Caused by: java.util.concurrent.TimeoutException\n"
    )
    fp = fingerprint(trace)
    assert (fp.exception, fp.root_cause) == (
        "org.example.Outer$InnerException",
        "java.util.concurrent.TimeoutException",
    )


def test_unrecognisable_traces_give_unknown() -> None:
    for trace in (None, "", "   \n", "boom", "Something failed: see logs", "a.b.c: lower-case simple name",
                  "java.lang.Exception" + "X" * 300, "has spaces.Exception: x", "1abc.Def: x"):  # fmt: skip
        fp = fingerprint(trace)
        assert (fp.exception, fp.root_cause) == (UNKNOWN, UNKNOWN), trace


def test_cloud_messages_map_to_their_error_state() -> None:
    cloud = "There were some errors with your configuration:\ntopics: Provided Kafka ApiKey is invalid\n"
    assert fingerprint(cloud, error_state="USER_ACTIONABLE_ERROR") == fingerprint(
        "", error_state="USER_ACTIONABLE_ERROR"
    )
    fp = fingerprint(cloud, error_state="USER_ACTIONABLE_ERROR")
    assert (fp.exception, fp.root_cause) == (UNKNOWN, "USER_ACTIONABLE_ERROR")
    assert fingerprint("", error_state="SYSTEM_ERROR").root_cause == "SYSTEM_ERROR"
    assert fingerprint("", error_state="RUNNING").root_cause == UNKNOWN  # only error states
    # "The exception name in case of error": a class in Cloud's text is used like a Java trace's.
    assert fingerprint(f"{DATA_EXC}: bad record", error_state="USER_ACTIONABLE_ERROR").root_cause == DATA_EXC


def test_java_class() -> None:
    assert java_class("org.a.B: c") == "org.a.B"
    assert java_class("org.a.B:") == "org.a.B"
    assert java_class("B: c") is None  # a bare simple name is not believed
    assert java_class("org.a.b") is None


CLASSES = (CONNECT_EXC, DATA_EXC, SER_EXC, "java.sql.SQLException", "org.postgresql.util.PSQLException")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=60), min_size=200, max_size=200))
def test_messages_never_reach_the_label_values(messages: list[str]) -> None:
    values = set()
    for i, message in enumerate(messages):
        head, cause = CLASSES[i % len(CLASSES)], CLASSES[(i // len(CLASSES)) % len(CLASSES)]
        fp = fingerprint(java_trace(head, message, ("a.B.c(B.java:1)",), (cause, message)))
        values.add((fp.exception, fp.root_cause))
        assert fp.exception in (*CLASSES, UNKNOWN) and fp.root_cause in (*CLASSES, UNKNOWN)
    assert len(values) <= len(CLASSES) ** 2 + len(CLASSES)


def test_ten_thousand_failing_tasks_with_different_messages_give_a_handful_of_values() -> None:
    """Simulator traces of 10,000 failing tasks, each message unique (ids, numbers, SQL): few label values."""
    causes = [
        ("java.sql.SQLException", 'ERROR: duplicate key value violates unique constraint "pk_{i}" (id={i})'),
        ("org.postgresql.util.PSQLException", "SELECT * FROM orders WHERE id = {i}; -- timeout after {i} ms"),
        ("java.net.SocketTimeoutException", "{i},000 milliseconds timeout on connection http-outgoing-{i}"),
        (SER_EXC, "Unknown magic byte! offset {i}"),
    ]
    values: set[tuple[str, str]] = set()
    lines: set[str] = set()
    for i in range(10_000):
        cls, msg = causes[i % len(causes)]
        kind = "sink" if i % 2 else "source"
        trace = task_trace(kind, (cls, msg.format(i=i))) if i % 3 else connector_trace((cls, msg.format(i=i)))
        fp = fingerprint(trace)
        values.add((fp.exception, fp.root_cause))
        lines.add(trace.splitlines()[0])
    assert len(lines) > 2_000  # the messages did differ ...
    assert len(values) <= 5  # ... the label values did not
    assert {r for _, r in values} == {c for c, _ in causes}
