"""The tool catalog: one unambiguous upstream name per tool, and the way back."""

from __future__ import annotations

import msgspec

from app.providers.catalog import MAX_NAME, catalog_for
from app.wire.client_tools import ShellTool
from app.wire.tools import FunctionTool, NamespaceTool, Tool


def namespace(name: str, *members: str) -> NamespaceTool:
    return NamespaceTool(name=name, description="d", tools=[FunctionTool(name=m) for m in members])


def test_plain_names_win_and_clashes_get_a_suffix() -> None:
    tools: list[Tool] = [namespace("crm", "lookup"), FunctionTool(name="crm__lookup")]
    catalog = catalog_for(tools, [])
    assert [(e.upstream, e.name, e.namespace) for e in catalog.entries] == [
        ("crm__lookup", "crm__lookup", None),
        ("crm__lookup_2", "lookup", "crm"),
    ]
    entry = catalog.entry("crm__lookup_2")
    assert entry is not None
    assert (entry.name, entry.namespace) == ("lookup", "crm")
    assert catalog.upstream_name("function", "lookup", "crm") == "crm__lookup_2"


def test_a_client_tool_type_yields_its_name_to_a_function_of_that_name() -> None:
    catalog = catalog_for([ShellTool(), FunctionTool(name="shell")], [])
    assert [(e.upstream, e.kind) for e in catalog.entries] == [
        ("shell", "function"),
        ("shell_2", "shell"),
    ]
    assert catalog.upstream_name("shell", "shell") == "shell_2"


def test_long_and_odd_namespaces_make_valid_distinct_names() -> None:
    long = "x" * 80
    catalog = catalog_for([namespace(long, "a", "b"), namespace("mcp__github__", "list.repos")], [])
    names = [entry.upstream for entry in catalog.entries]
    assert len(set(names)) == 3
    assert all(len(name) <= MAX_NAME for name in names)
    assert names[2] == "mcp__github__list_repos"


def test_a_tool_no_longer_offered_keeps_a_deterministic_name() -> None:
    catalog = catalog_for([], [])
    assert catalog.upstream_name("function", "lookup", "crm") == "crm__lookup"
    assert catalog.upstream_name("local_shell", "local_shell") == "local_shell"


def test_items_add_tools_and_hosted_ones_are_left_out() -> None:
    extra = {
        "type": "additional_tools",
        "role": "developer",
        "tools": [{"type": "web_search"}, msgspec.to_builtins(FunctionTool(name="f"))],
    }
    catalog = catalog_for([], [extra])
    assert [entry.upstream for entry in catalog.entries] == ["f"]
