"""Every tool one generation offers its chat-completions upstream, each under one unambiguous
function name, and the way back from that name to the tool.

What is offered: the request's `tools`, then the tools of every `additional_tools` item in the
context (each makes its tools available from where it stands on), then, when the request has
a client-executed `tool_search`, the tools its `tool_search_output` items loaded. Namespaces
are flattened into their functions. A tool marked `defer_loading` waits for a client's tool
search to load it; without a client-executed search there is nothing Rapport could search
with, so deferred tools are offered from the start — as a server-side search that always
finds everything would — and the `tool_search` tool itself is not sent.

Names: a plain function or custom tool keeps its own name (the model and the client both know
it so); a namespaced one is `<namespace>__<name>`, and a client-executed type is offered under
its type's name (`local_shell`, `shell`, `apply_patch`, `computer`, `tool_search`). A clash
gives the later tool `_2`, `_3`…, so each upstream name maps back to exactly one tool. The
same names are computed for the calls of the history, so a replayed call is named as its tool
is offered now.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import msgspec

from app.wire.client_tools import (
    ApplyPatchTool,
    ComputerTool,
    ComputerUsePreviewTool,
    LocalShellTool,
    ShellTool,
    ToolSearchTool,
)
from app.wire.tools import CustomTool, FunctionTool, NamespaceTool, Tool

Kind = Literal[
    "function", "custom", "local_shell", "shell", "apply_patch", "computer", "tool_search"
]

# Item types whose calls name a client-executed kind rather than a function.
CALL_KINDS: dict[str, Kind] = {
    "local_shell_call": "local_shell",
    "shell_call": "shell",
    "apply_patch_call": "apply_patch",
    "computer_call": "computer",
    "tool_search_call": "tool_search",
}
_BUILTIN_KINDS: dict[type, Kind] = {
    LocalShellTool: "local_shell",
    ShellTool: "shell",
    ApplyPatchTool: "apply_patch",
    ComputerTool: "computer",
    ComputerUsePreviewTool: "computer",
    ToolSearchTool: "tool_search",
}
_NOT_IN_A_NAME = re.compile(r"[^a-zA-Z0-9_-]")
MAX_NAME = 64  # OpenAI's chat-completions limit on a function name


class Entry(msgspec.Struct, frozen=True):
    """One offered tool: its upstream name, what it is, and its definition."""

    upstream: str
    kind: Kind
    name: str  # the tool's own name; a client-executed type's is the type
    tool: Any  # FunctionTool | CustomTool | one of app/wire/client_tools.py
    namespace: str | None = None
    namespace_description: str | None = None


class ToolCatalog:
    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self._by_upstream = {entry.upstream: entry for entry in entries}
        self._by_key = {_key(entry.kind, entry.name, entry.namespace): entry for entry in entries}

    def __bool__(self) -> bool:
        return bool(self.entries)

    def entry(self, upstream: str | None) -> Entry | None:
        return self._by_upstream.get(upstream or "")

    def upstream_name(self, kind: Kind, name: str, namespace: str | None = None) -> str:
        """The name a call of this tool goes upstream under (also when no longer offered)."""
        found = self._by_key.get(_key(kind, name, namespace))
        return found.upstream if found is not None else _candidate(kind, name, namespace)

    def named(self, name: str) -> Entry | None:
        """The tool a `tool_choice` names: a plain function first, else a namespaced one."""
        plain = self._by_key.get(_key("function", name, None))
        if plain is not None:
            return plain
        return next((e for e in self.entries if e.name == name and e.namespace), None)

    def of_kind(self, kind: str) -> Entry | None:
        return next((entry for entry in self.entries if entry.kind == kind), None)


def catalog_for(tools: Sequence[Tool], context: Sequence[dict[str, Any]]) -> ToolCatalog:
    """The catalog of one generation: its request's tools and those its context adds."""
    offered: list[Tool] = list(tools)
    loaded: list[Tool] = []
    for body in context:
        if body.get("type") == "additional_tools":
            offered += lenient_tools(body.get("tools"))
        elif body.get("type") == "tool_search_output":
            loaded += lenient_tools(body.get("tools"))
    client_search = any(
        isinstance(tool, ToolSearchTool) and tool.execution == "client" for tool in offered
    )
    found = list(_flatten(offered, defer=client_search))
    if client_search:
        found += _flatten(loaded, defer=False)
    return ToolCatalog(_named(found))


def lenient_tools(raw: Any) -> list[Tool]:
    """Tool definitions stored in items (validated when they came in): what Rapport can offer,
    leaving out hosted types, which only a hosted-tool loop could run."""
    tools: list[Tool] = []
    for value in raw if isinstance(raw, list) else []:
        try:
            tools.append(msgspec.convert(value, Tool))
        except msgspec.ValidationError:
            continue
    return tools


_Found = tuple[Kind, str, str | None, Any, str | None]  # kind, name, namespace, tool, ns text


def _flatten(tools: Sequence[Tool], *, defer: bool) -> Iterator[_Found]:
    for tool in tools:
        if isinstance(tool, NamespaceTool):
            for member in tool.tools:
                if not (defer and member.defer_loading):
                    kind: Kind = "custom" if isinstance(member, CustomTool) else "function"
                    yield kind, member.name, tool.name, member, tool.description
        elif isinstance(tool, FunctionTool | CustomTool):
            if not (defer and tool.defer_loading):
                kind = "custom" if isinstance(tool, CustomTool) else "function"
                yield kind, tool.name, None, tool, None
        elif isinstance(tool, ToolSearchTool) and tool.execution != "client":
            continue  # a server-side search: its deferred tools are offered instead
        else:
            builtin = _BUILTIN_KINDS[type(tool)]
            yield builtin, builtin, None, tool, None


def _named(found: list[_Found]) -> list[Entry]:
    """Plain function names first, as they are; then every other tool a free name."""
    taken: set[str] = set()
    keys: set[tuple[str, ...]] = set()
    entries: list[Entry] = []
    for plain_pass in (True, False):
        for kind, name, namespace, tool, about in found:
            plain = namespace is None and kind in ("function", "custom")
            key = _key(kind, name, namespace)
            if plain != plain_pass or key in keys:
                continue
            upstream = name if plain else _free(_candidate(kind, name, namespace), taken)
            if upstream in taken:
                continue  # a second plain tool of the same name (refused at validation)
            keys.add(key)
            taken.add(upstream)
            entries.append(Entry(upstream, kind, name, tool, namespace, about))
    return entries


def _key(kind: str, name: str, namespace: str | None) -> tuple[str, ...]:
    if kind in ("function", "custom"):
        return ("function", namespace or "", name)  # one function namespace upstream
    return (kind,)


def _candidate(kind: Kind, name: str, namespace: str | None) -> str:
    if kind not in ("function", "custom"):
        return kind
    if namespace is None:
        return name
    joined = _NOT_IN_A_NAME.sub("_", f"{namespace.rstrip('_')}__{name}")
    if len(joined) <= MAX_NAME:
        return joined
    digest = hashlib.sha256(joined.encode()).hexdigest()[:8]
    return f"{joined[: MAX_NAME - 9]}_{digest}"


def _free(candidate: str, taken: set[str]) -> str:
    name, suffix = candidate, 2
    while name in taken:
        name = f"{candidate[: MAX_NAME - 4]}_{suffix}"
        suffix += 1
    return name
