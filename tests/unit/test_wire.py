"""The two wire protocols (wire.py): both ends build and read the same dataclasses, the bytes on the wire keep
their shape, and a field named differently on one end fails here rather than arriving as a silent None."""

import ast
import dataclasses
import os

import pytest

from repo import REPO
from unstuck import wire
from unstuck.errors.failure import Failure
from unstuck.reload import events as ev
from unstuck.reload import warm_process_client

FAILURE = Failure("import", "SyntaxError", "invalid syntax", "app/main.py", 3).to_dict()
APP = {"import": "app.main:app", "reason": "APP_MODULE", "interface": "asgi3"}

# One of each message, with every field set to something other than its default.
EXAMPLES = [
    wire.Started(1.5, 4242),
    wire.Imported(1.6),
    wire.Ready(1.7, 0.1, APP),
    wire.Failed(FAILURE, 1.8, APP, held=True, source="spare"),
    wire.Served(1.9),
    wire.Uses(["fastapi", "anyio"], [["app.main", "/workspace/app/main.py", "", True]]),
    wire.Fork(7, FAILURE, [["modified", "/workspace/app/main.py"]]),
    wire.Preload(),
    wire.BuildLayer(),
    wire.NoLayer(),
    wire.WarmStarted(120, ["fastapi"], "myproject.models", 0.8),
    wire.Forked(7, 4243, "app layer"),
    wire.ChildExit(4243, -15),
    wire.LayerState(ok=True, pid=4244, files=12),
    wire.LayerState(ok=False, why="an import started a thread"),
    wire.Preloaded(3, ["fastapi"]),
    wire.SeedsSkipped(["pandas"]),
    wire.NoOrmAhead(),
]
DECODE = {**{cls: wire.decode_report for cls in wire.REPORTS.values()},
          **{cls: wire.decode_request for cls in wire.REQUESTS.values()},
          **{cls: wire.decode_warm for cls in wire.WARM_MESSAGES.values()}}


def test_every_message_type_has_an_example():
    assert {type(m) for m in EXAMPLES} == set(DECODE)


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_each_message_arrives_as_it_was_sent(message):
    assert DECODE[type(message)](wire.encode(message)) == message


def test_the_bytes_on_the_wire_keep_their_shape():
    """What older tools and logs read: one JSON object, its tag first, then the fields by name."""
    assert wire.encode(wire.Started(1.5, 4242)) == b'{"event": "started", "at": 1.5, "pid": 4242, "source": ""}'
    assert wire.decode_report(b'{"event": "started", "at": 1.5, "pid": 4242}') == wire.Started(1.5, 4242)
    assert wire.encode(wire.Fork(7, None)) == b'{"op": "fork", "id": 7, "failure": null, "changes": null}'
    assert wire.encode(wire.NoLayer()) == b'{"op": "no-layer"}'
    assert wire.encode(wire.ChildExit(9, -9)) == b'{"event": "exit", "pid": 9, "code": -9}'


@pytest.mark.parametrize("data, decode", [
    (b'{"event": "started", "at": 1.5, "process": 4242}', wire.decode_report),  # a field renamed by the sender
    (b'{"event": "started", "at": 1.5}', wire.decode_report),  # one left out
    (b'{"event": "begun", "at": 1.5, "pid": 1}', wire.decode_report),  # an unknown tag
    (b'{"op": "fork", "id": 1, "failure": null, "changes": null}', wire.decode_report),  # another protocol's
    (b'{"event": "forked", "id": 1, "pid": 2}', wire.decode_warm),
    (b'not json', wire.decode_request),
    (b'[1, 2]', wire.decode_warm),
])
def test_a_message_the_other_end_does_not_know_is_refused_not_half_read(data, decode):
    with pytest.raises(wire.BadMessage):
        decode(data)


def test_the_worker_writes_reports_the_reload_server_reads(tmp_path):
    from unstuck.generation.worker import Reporter

    read_fd, write_fd = os.pipe()
    reporter = Reporter(write_fd)
    for message in EXAMPLES[:6]:
        reporter.send(message)
    reporter._file.close()
    with os.fdopen(read_fd) as lines:
        assert [wire.decode_report(line) for line in lines] == EXAMPLES[:6]


def test_each_report_becomes_the_machine_event_with_its_fields():
    started, imported, ready, failed, served, uses = EXAMPLES[:6]
    assert ev.from_report(3, started, None, forked=True) == ev.Started(3, 4242, 1.5, forked=True)
    assert ev.from_report(3, started, 77, forked=True).pid == 77  # the warm process's word comes first
    # A forked worker says itself what it was made from, on the pipe its "ready" comes on (never after it).
    assert ev.from_report(3, wire.Started(1.5, 4242, "app layer"), None, forked=True).source == "app layer"
    assert ev.from_report(3, imported, None, False) == ev.Imported(3, 1.6)
    assert ev.from_report(3, ready, None, False) == ev.Ready(3, 1.7, APP)
    assert ev.from_report(3, failed, None, False) == ev.Failed(3, Failure.from_dict(FAILURE), 1.8, APP, held=True,
                                                               source="spare")
    assert ev.from_report(3, served, None, False) == ev.Served(3, 1.9)
    assert ev.from_report(3, uses, None, False) == ev.Uses(3, ("fastapi", "anyio"),
                                                           (("app.main", "/workspace/app/main.py", "", True),))


def test_each_warm_message_becomes_an_event_or_a_log_line():
    warm = object()
    started, forked, exit_, layer = EXAMPLES[10], EXAMPLES[11], EXAMPLES[12], EXAMPLES[13]
    assert ev.from_warm(warm, started) == ev.WarmReady(warm, started)
    assert ev.from_warm(warm, forked, 5) == ev.WarmForked(warm, 7, 4243, 5, "app layer")
    assert ev.from_warm(warm, exit_) == ev.WarmChildExited(warm, 4243, -15)
    assert ev.from_warm(warm, layer) == ev.WarmLayer(warm, layer)
    logged = {cls for cls in wire.WARM_MESSAGES.values() if ev.from_warm(warm, EXAMPLES[[type(m) for m in EXAMPLES]
                                                                                       .index(cls)]) is None}
    assert logged == set(warm_process_client.NOTES)


def test_the_warm_messages_only_logged_are_logged_with_their_fields(caplog):
    class Warm:
        pid = 4242

    with caplog.at_level("DEBUG", logger="unstuck"):
        for cls, note in warm_process_client.NOTES.items():
            note(Warm(), EXAMPLES[[type(m) for m in EXAMPLES].index(cls)])
    assert "imported 3 more modules, warmed up fastapi" in caplog.text and "pandas not imported ahead" in caplog.text


def wire_calls(path):
    for node in ast.walk(ast.parse((REPO / path).read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "wire"
                and dataclasses.is_dataclass(getattr(wire, node.func.attr))):
            yield node, getattr(wire, node.func.attr)


@pytest.mark.parametrize("path", ["entrypoint/unstuck/generation/worker.py", "entrypoint/unstuck/warm/warm_process.py",
                                  "entrypoint/unstuck/reload/warm_process_client.py"])
def test_every_message_built_in_the_code_names_fields_its_class_has(path):
    """Built with a field the class does not have, or without one it needs, a message would fail only when
    that line runs (in a worker, in the warm process): checked here for every wire.X(...) in the senders."""
    calls = list(wire_calls(path))
    assert calls
    for node, cls in calls:
        names = [f.name for f in dataclasses.fields(cls)]
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        given = names[:len(node.args)] + [k.arg for k in node.keywords]
        where = f"{path}:{node.lineno}"
        assert len(node.args) <= len(names), f"{where}: too many fields for {cls.__name__}"
        assert set(given) <= set(names), f"{where}: {cls.__name__} has no field {set(given) - set(names)}"
        assert set(required) <= set(given), f"{where}: {cls.__name__} needs {set(required) - set(given)}"


@pytest.mark.parametrize("path, reads, cls", [
    ("entrypoint/unstuck/warm/warm_process.py", "request", wire.Fork),  # what the warm process reads of a fork
    ("entrypoint/unstuck/reload/reloader.py", "event.message", wire.LayerState),  # the reload server, of a layer
    ("entrypoint/unstuck/reload/warm_process_client.py", "message", wire.WarmStarted),  # ... of the warm one's start
])
def test_every_field_the_code_reads_of_a_message_is_one_its_class_has(path, reads, cls):
    names = {f.name for f in dataclasses.fields(cls)}
    read = {node.attr for node in ast.walk(ast.parse((REPO / path).read_text()))
            if isinstance(node, ast.Attribute) and ast.unparse(node.value) == reads}
    assert read and read <= names, f"{path} reads {read - names} of {cls.__name__}"
