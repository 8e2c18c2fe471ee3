"""The async client mirrors the sync client: same public methods, same parameters, coroutines."""

from __future__ import annotations

import ast
import inspect
import textwrap

from jmapsyncd.jmap import AsyncJMAPClient, JMAPClient

#: methods that do no I/O: plain methods on both clients
LOCAL = ("close", "set_verify_tls", "export_session", "import_session")


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in LOCAL
    }


def test_same_public_methods_and_parameters() -> None:
    sync, async_ = _public(JMAPClient), _public(AsyncJMAPClient)
    assert set(sync) == set(async_)
    for name, sig in sync.items():
        assert list(sig.parameters) == list(async_[name].parameters), name
        for param in sig.parameters.values():
            assert param.default == async_[name].parameters[param.name].default, name


def test_local_settings_are_plain_methods_on_both() -> None:
    for name in ("set_verify_tls", "export_session", "import_session"):
        assert not inspect.iscoroutinefunction(getattr(AsyncJMAPClient, name)), name
        assert not inspect.iscoroutinefunction(getattr(JMAPClient, name)), name
        assert _body(JMAPClient, name) == _body(AsyncJMAPClient, name), name
        sync = inspect.signature(getattr(JMAPClient, name))
        assert sync == inspect.signature(getattr(AsyncJMAPClient, name)), name


def test_async_methods_are_coroutines() -> None:
    for name in _public(AsyncJMAPClient):
        assert inspect.iscoroutinefunction(getattr(AsyncJMAPClient, name)), name


def test_reference_methods_exist() -> None:
    reference = {
        "get_calendars", "create_event", "get_event", "update_event", "delete_event",
        "search_events", "get_sync_token", "get_objects_by_sync_token", "create_task",
        "get_task", "update_task", "delete_task", "get_task_lists",
    }  # fmt: skip
    assert reference <= set(_public(JMAPClient))
    sig = inspect.signature(JMAPClient.search_events)
    assert [(p.name, p.default) for p in list(sig.parameters.values())[1:]] == [
        ("calendar_id", None), ("start", None), ("end", None), ("text", None)
    ]  # fmt: skip
    init = inspect.signature(JMAPClient.__init__)
    assert [(p.name, p.default) for p in list(init.parameters.values())[1:]] == [
        ("url", inspect.Parameter.empty), ("username", None), ("password", None),
        ("auth", None), ("auth_type", None), ("timeout", 30),
    ]  # fmt: skip


class _Unasync(ast.NodeTransformer):
    """Turns ``async def``/``await`` into their sync forms."""

    def visit_Await(self, node: ast.Await) -> ast.AST:
        inner: ast.AST = self.visit(node.value)
        return inner

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        sync = ast.FunctionDef(**{field: getattr(node, field) for field in node._fields})
        return self.generic_visit(sync)


def _body(cls: type, name: str) -> str:
    """A method's syntax tree with the sync/async differences taken out."""
    source = textwrap.dedent(inspect.getsource(getattr(cls, name)))
    tree = ast.parse(source.replace("AsyncJMAPClient", "JMAPClient"))
    return ast.dump(_Unasync().visit(tree))


def test_async_wrappers_are_the_sync_ones_awaited() -> None:
    # The logic lives in the flows; each public method only hands a flow to its driver. This
    # keeps the two clients from drifting apart.
    for name in _public(JMAPClient):
        assert _body(JMAPClient, name) == _body(AsyncJMAPClient, name), name
