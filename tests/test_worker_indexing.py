"""The real Python worker (azure_functions_runtime) indexes function_app.py and loads every function.

The test plays the Functions host: it sends WorkerInitRequest, FunctionsMetadataRequest and one
FunctionLoadRequest per function, and hands the worker a stand-in for the host's protobuf module.
The worker is stricter than `app.get_functions()` (it checks bindings against the Python
signatures), so this catches apps that would fail to start in Azure.
"""

import asyncio
import contextlib
import importlib
import json
import sys
import textwrap
import types
from pathlib import Path

import pytest

import azure_functions_runtime as worker
from azure_functions_runtime import handle_event
from azure_functions_runtime.functions import Registry

APP_DIR = Path(__file__).resolve().parent.parent


class _Message:
    """Keeps the fields it is built with, like a protobuf message."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self):
        return f"{type(self).__name__}({self.__dict__!r})"


def _message(name, **constants):
    return type(name, (_Message,), constants)


# The message classes and enum values the worker uses from the host's protos module.
PROTOS = types.SimpleNamespace(
    StatusResult=_message("StatusResult", Failure=0, Success=1, Cancelled=2),
    BindingInfo=_message("BindingInfo", **{"in": 0}, out=1, inout=2,
                         undefined=0, string=1, binary=2, stream=3),
    **{name: _message(name) for name in (
        "WorkerInitResponse", "WorkerMetadata", "RpcException", "FunctionMetadataResponse",
        "RpcFunctionMetadata", "RpcRetryOptions", "FunctionLoadResponse")},
)
SUCCESS = PROTOS.StatusResult.Success


def host_message(kind, **fields):
    """What the proxy worker passes to the library: the host's request plus its properties."""
    return types.SimpleNamespace(
        request=types.SimpleNamespace(**{kind: types.SimpleNamespace(**fields)}),
        properties={"host": "127.0.0.1", "protos": PROTOS})


async def host_session(app_dir):
    """Init (which indexes), ask for metadata, then load each function, as the host does."""
    init = await worker.worker_init_request(host_message(
        "worker_init_request", capabilities={}, function_app_directory=str(app_dir)))
    if init.result.status != SUCCESS:
        return init, None, []
    metadata = await worker.functions_metadata_request(host_message(
        "functions_metadata_request", function_app_directory=str(app_dir)))
    loads = [await worker.function_load_request(host_message(
        "function_load_request", function_id=m.function_id, metadata=m))
        for m in metadata.function_metadata_results]
    return init, metadata, loads


def _own_modules(app_dir):
    """Top-level module names the app directory provides (its .py files and packages)."""
    return ({p.stem for p in app_dir.glob("*.py")}
            | {p.parent.name for p in app_dir.glob("*/*.py")}) - {"tests"}


def _forget(names):
    for name in [n for n in sys.modules if n.split(".")[0] in names]:
        del sys.modules[name]


@contextlib.contextmanager
def fresh_imports(app_dir):
    """Put app_dir first on sys.path and import its modules afresh; restore both afterwards."""
    names = _own_modules(app_dir)
    saved_path = list(sys.path)
    saved_modules = {n: m for n, m in sys.modules.items() if n.split(".")[0] in names}
    sys.path.insert(0, str(app_dir))
    importlib.invalidate_caches()
    _forget(names)
    try:
        yield lambda: _forget(names)
    finally:
        _forget(names)
        sys.modules.update(saved_modules)
        sys.path[:] = saved_path


@pytest.fixture(autouse=True)
def clean_worker(monkeypatch):
    """Settings the app reads, and a worker with no state left from another test."""
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("WORK_QUEUE", "sync-jobs")
    monkeypatch.setenv("SITES", "[]")
    monkeypatch.delenv("PYTHON_SCRIPT_FILE_NAME", raising=False)
    monkeypatch.setattr(handle_event, "_functions", Registry())
    monkeypatch.setattr(handle_event, "_metadata_result", None)
    monkeypatch.setattr(handle_event, "protos", None)
    monkeypatch.setattr(handle_event, "_host", "")


def trigger_summary(trigger):
    """Trigger type, route, methods and queue name from a trigger's function.json dict."""
    return {"type": trigger["type"], "route": trigger.get("route"),
            "methods": trigger.get("methods"), "queueName": trigger.get("queueName")}


def declared_functions():
    """What the app itself declares, per `app.get_functions()`."""
    app = importlib.import_module("function_app").app
    summaries = {}
    for fn in app.get_functions():
        trigger = fn.get_trigger()
        methods = getattr(trigger, "methods", None)
        summaries[fn.get_function_name()] = trigger_summary({
            "type": trigger.type, "route": getattr(trigger, "route", None),
            "methods": None if methods is None else [getattr(m, "value", m) for m in methods],
            "queueName": getattr(trigger, "queue_name", None)})
    return summaries


def indexed_functions(metadata):
    """What the worker told the host, read from the raw bindings the host would use."""
    summaries = {}
    for m in metadata.function_metadata_results:
        bindings = [json.loads(b) for b in m.raw_bindings]
        (trigger,) = [b for b in bindings if b["type"].endswith("Trigger")]
        summaries[m.name] = trigger_summary(trigger)
    return summaries


def test_worker_indexes_and_loads_every_function():
    with fresh_imports(APP_DIR) as forget_app:
        expected = declared_functions()
        forget_app()  # the worker imports function_app itself, as in a fresh process
        init, metadata, loads = asyncio.run(host_session(APP_DIR))

    assert init.result.status == SUCCESS, init.result
    assert metadata.result.status == SUCCESS, metadata.result
    assert indexed_functions(metadata) == expected
    for name in ("event_create", "event_update", "event_delete"):
        assert expected[name]["type"] == "httpTrigger"
        assert expected[name]["methods"] == ["POST"]
    assert expected["sync_worker"] == {"type": "queueTrigger", "route": None, "methods": None,
                                       "queueName": "%WORK_QUEUE%"}

    results = metadata.function_metadata_results
    assert len({m.function_id for m in results}) == len(results)
    assert [r.function_id for r in loads] == [m.function_id for m in results]
    for load, m in zip(loads, results):
        assert load.result.status == SUCCESS, (m.name, load.result)
        assert handle_event._functions.get_function(m.function_id).name == m.name


def test_worker_rejects_binding_that_does_not_match_the_parameter(tmp_path):
    (tmp_path / "function_app.py").write_text(textwrap.dedent("""
        import azure.functions as func

        app = func.FunctionApp()

        @app.queue_trigger(arg_name="message", queue_name="q", connection="AzureWebJobsStorage")
        def broken(msg: func.QueueMessage) -> None:
            pass
    """))
    with fresh_imports(tmp_path):
        init, metadata, loads = asyncio.run(host_session(tmp_path))

    assert init.result.status == PROTOS.StatusResult.Failure
    assert "FunctionLoadError" in init.result.exception.message
    assert "'msg'" in init.result.exception.message
    assert metadata is None and loads == []
