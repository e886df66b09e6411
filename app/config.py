"""Settings: one frozen struct, read once from the RAPPORT_* environment and the models file."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./rapport.db"
DEFAULT_UPSTREAM_BASE_URL = "https://api.openai.com/v1"

UpstreamTransport = Literal["aiohttp", "httpx"]
ProviderKind = Literal["openai-chat", "anthropic", "gemini", "openai-responses"]
# Where each provider's own API lives: a route that names no `base_url` goes there.
PROVIDER_BASE_URLS: dict[str, str] = {
    "openai-chat": DEFAULT_UPSTREAM_BASE_URL,
    "openai-responses": DEFAULT_UPSTREAM_BASE_URL,
    "anthropic": "https://api.anthropic.com/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
}
# Rapport counts tokens offline with an OpenAI encoding. Claude's and Gemini's tokenizers cut
# the same text into more pieces (Claude's notably on code), so their windows are filled only
# to 1/margin of the estimate; a route's `token_margin` says otherwise.
DEFAULT_TOKEN_MARGINS: dict[str, float] = {"anthropic": 1.25, "gemini": 1.1}
# Hosted tool types an `openai-responses` upstream may run itself (`upstream_tools`).
UPSTREAM_TOOL_TYPES = frozenset(
    {
        "web_search",
        "web_search_2025_08_26",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "file_search",
        "code_interpreter",
        "image_generation",
    }
)


class ConfigError(Exception):
    """The configuration cannot be used; the message says which variable or file line is wrong."""


# One whole upstream call at most (a long reasoning run fits), and one answer's bytes (room
# for 100,000 tokens with their logprobs).
DEFAULT_UPSTREAM_DEADLINE = 1800.0
DEFAULT_MAX_ANSWER_BYTES = 16 * 1024 * 1024


class ModelRoute(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One entry of the models file: which upstream serves a model name, and how."""

    name: str
    provider: ProviderKind = "openai-chat"
    base_url: str = ""  # empty: the provider's own API (PROVIDER_BASE_URLS)
    api_key_env: str | None = None
    upstream_model: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    # The encoding that counts this model's tokens; unset: by model name, else o200k_base
    # (app/tokens/models.py says why that is the fallback).
    tokenizer: Literal["o200k_base", "cl100k_base"] | None = None
    # Older OpenAI-compatible servers (llama.cpp, Ollama) only know `max_tokens`; OpenAI's
    # reasoning models only accept `max_completion_tokens`. The route says which to send.
    max_tokens_param: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens"
    # Parameters not every upstream knows. Each provider says which it takes
    # (app/providers/params.py: chat-completions none of these, Anthropic and Gemini top_k,
    # a Responses upstream metadata and verbosity); set here, they override that.
    forward_top_k: bool | None = None
    forward_metadata: bool | None = None
    forward_verbosity: bool | None = None
    # File parts (`input_file`): OpenAI takes them; most self-hosted servers do not.
    accepts_files: bool = True
    # Earlier reasoning sent back as `reasoning_content` on the assistant turn it preceded
    # (vLLM, DeepSeek); otherwise reasoning items are left out of the upstream's context.
    replay_reasoning: bool = False
    # How a json_schema `text.format` is sent: OpenAI's `response_format: {type: json_schema,
    # json_schema: {name, schema, strict}}`, or `{type: json_object, schema}` for servers that
    # only take that form (llama-cpp-python's), which constrain the answer all the same.
    json_schema_style: Literal["json_schema", "json_object_schema"] = "json_schema"
    # Hosted tool types (web_search, mcp, …) this route leaves out of a request instead of
    # refusing it, for clients such as Codex that always send them; empty: a clear 400.
    drop_hosted_tools: tuple[str, ...] = ()
    # The longest one read may wait (`timeout_seconds`), and the longest one whole call may
    # take (`deadline_seconds`; unset: RAPPORT_UPSTREAM_DEADLINE): an upstream that trickles a
    # byte now and then never trips the first.
    timeout_seconds: float = 600.0
    deadline_seconds: float | None = None
    # The most bytes one answer may take (unset: RAPPORT_MAX_ANSWER_BYTES).
    max_answer_bytes: int | None = None
    # Anthropic: the `anthropic-version` header, and `anthropic-beta` features to ask for.
    anthropic_version: str = "2023-06-01"
    anthropic_beta: tuple[str, ...] = ()
    # How `reasoning.effort` reaches a thinking model: as a token budget (Anthropic's
    # `budget_tokens`, Gemini 2.5's `thinkingBudget`) or as a named level (Anthropic's adaptive
    # thinking with `output_config.effort`, Gemini 3's `thinkingLevel`).
    thinking_style: Literal["budget", "effort"] = "budget"
    # openai-responses: hosted tool types the upstream runs itself instead of Rapport (their
    # definitions are sent as they came; their output items are relayed).
    upstream_tools: tuple[str, ...] = ()
    # The offline token estimate is trusted to 1/token_margin of the window (unset: by provider).
    token_margin: float | None = None

    def __post_init__(self) -> None:
        from app.wire.tools import HOSTED_TOOL_TYPES  # the wire layer knows the tool types

        unknown = sorted(set(self.drop_hosted_tools) - HOSTED_TOOL_TYPES)
        if unknown:
            raise ValueError(
                f"drop_hosted_tools: {', '.join(unknown)} is not a hosted tool type "
                f"(one of {', '.join(sorted(HOSTED_TOOL_TYPES))})"
            )
        if self.upstream_tools and self.provider != "openai-responses":
            raise ValueError("upstream_tools: only an openai-responses upstream runs tools")
        foreign = sorted(set(self.upstream_tools) - UPSTREAM_TOOL_TYPES)
        if foreign:
            raise ValueError(
                f"upstream_tools: {', '.join(foreign)} cannot run upstream "
                f"(one of {', '.join(sorted(UPSTREAM_TOOL_TYPES))})"
            )
        if self.token_margin is not None and self.token_margin < 1:
            raise ValueError("token_margin: at least 1 (the estimate is never stretched)")
        if not self.base_url:
            msgspec.structs.force_setattr(self, "base_url", PROVIDER_BASE_URLS[self.provider])

    @property
    def count_margin(self) -> float:
        if self.token_margin is not None:
            return self.token_margin
        return DEFAULT_TOKEN_MARGINS.get(self.provider, 1.0)


class Settings(msgspec.Struct, frozen=True):
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    upstream_base_url: str = DEFAULT_UPSTREAM_BASE_URL
    upstream_api_key: str | None = None
    models_file: str | None = None
    routes: tuple[ModelRoute, ...] = ()
    upstream_timeout_seconds: float = 600.0
    upstream_connect_timeout_seconds: float = 10.0
    # One whole upstream call, and one answer's size, at most (routes may set their own).
    upstream_deadline_seconds: float = DEFAULT_UPSTREAM_DEADLINE
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    # How long `serve` and `worker` let running responses end before they exit.
    shutdown_grace_seconds: float = 10.0
    # What carries the upstream calls under httpx (app/providers/upstream_client.py).
    upstream_transport: UpstreamTransport = "aiohttp"
    log_level: str = "INFO"
    # "json" or "console"; unset: console on a terminal, JSON anywhere else (app/logs.py).
    log_format: Literal["json", "console"] | None = None
    # How long a running response's heartbeat and conversation lock hold without renewal.
    lease_seconds: float = 30.0
    # How long a background response's events stay replayable after it ends.
    event_ttl_seconds: float = 600.0
    # How often a background response is tried before it is failed for good.
    max_attempts: int = 3
    # A queued response nobody has taken for this long is enqueued again (the queue lost it).
    requeue_after_seconds: float = 15.0
    # Seals compaction items (app/sealing.py); unset, a key kept in the database.
    secret_key: str | None = None
    # Hosted tools (app/tools/): private or loopback hosts (or host:port) a tool URL may
    # reach; the SearXNG instance web_search queries; how long one hosted call may take.
    allowed_tool_hosts: tuple[str, ...] = ()
    web_search_url: str | None = None
    tool_timeout_seconds: float = 60.0

    @property
    def is_embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the environment once; callers keep the result (it is frozen)."""
    env = os.environ if environ is None else environ
    models_file = env.get("RAPPORT_MODELS") or None
    return Settings(
        database_url=env.get("RAPPORT_DATABASE_URL") or DEFAULT_DATABASE_URL,
        redis_url=env.get("RAPPORT_REDIS_URL") or None,
        upstream_base_url=(env.get("RAPPORT_UPSTREAM_BASE_URL") or DEFAULT_UPSTREAM_BASE_URL),
        upstream_api_key=env.get("RAPPORT_UPSTREAM_API_KEY") or env.get("OPENAI_API_KEY") or None,
        models_file=models_file,
        routes=load_routes(Path(models_file)) if models_file else (),
        upstream_timeout_seconds=_float(env, "RAPPORT_UPSTREAM_TIMEOUT", 600.0),
        upstream_connect_timeout_seconds=_float(env, "RAPPORT_UPSTREAM_CONNECT_TIMEOUT", 10.0),
        upstream_deadline_seconds=_float(
            env, "RAPPORT_UPSTREAM_DEADLINE", DEFAULT_UPSTREAM_DEADLINE
        ),
        max_answer_bytes=_bytes(env, "RAPPORT_MAX_ANSWER_BYTES", DEFAULT_MAX_ANSWER_BYTES),
        shutdown_grace_seconds=_float(env, "RAPPORT_SHUTDOWN_GRACE", 10.0),
        upstream_transport=_transport(env.get("RAPPORT_UPSTREAM_TRANSPORT")),
        log_level=_log_level(env.get("RAPPORT_LOG_LEVEL")),
        log_format=_log_format(env.get("RAPPORT_LOG_FORMAT")),
        lease_seconds=_float(env, "RAPPORT_LEASE_SECONDS", 30.0),
        event_ttl_seconds=_float(env, "RAPPORT_EVENT_TTL_SECONDS", 600.0),
        max_attempts=int(_float(env, "RAPPORT_MAX_ATTEMPTS", 3)),
        requeue_after_seconds=_float(env, "RAPPORT_REQUEUE_AFTER_SECONDS", 15.0),
        secret_key=env.get("RAPPORT_SECRET_KEY") or None,
        allowed_tool_hosts=tuple(
            host.strip().lower()
            for host in (env.get("RAPPORT_ALLOWED_TOOL_HOSTS") or "").split(",")
            if host.strip()
        ),
        web_search_url=env.get("RAPPORT_WEB_SEARCH_URL") or None,
        tool_timeout_seconds=_float(env, "RAPPORT_TOOL_TIMEOUT", 60.0),
    )


def load_routes(path: Path) -> tuple[ModelRoute, ...]:
    """Parse the TOML models file; a typo fails at start-up rather than on the first request."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"RAPPORT_MODELS: cannot read {path}: {exc}") from None
    try:
        return tuple(msgspec.convert(document.get("models", []), list[ModelRoute]))
    except msgspec.ValidationError as exc:
        raise ConfigError(f"RAPPORT_MODELS: {path}: {exc}") from None


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str | None) -> str:
    value = (raw or "INFO").strip().upper()
    if value not in _LOG_LEVELS:
        raise ConfigError(f"RAPPORT_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, not {raw!r}")
    return value


def _log_format(raw: str | None) -> Literal["json", "console"] | None:
    if not raw:
        return None
    value = raw.strip().lower()
    if value == "json":
        return "json"
    if value == "console":
        return "console"
    raise ConfigError(f"RAPPORT_LOG_FORMAT must be 'json' or 'console', not {raw!r}")


def _transport(raw: str | None) -> UpstreamTransport:
    value = (raw or "aiohttp").strip().lower()
    if value == "aiohttp":
        return "aiohttp"
    if value == "httpx":
        return "httpx"
    raise ConfigError(f"RAPPORT_UPSTREAM_TRANSPORT must be 'aiohttp' or 'httpx', not {raw!r}")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None


def _bytes(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of bytes, not {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1 byte, not {raw!r}")
    return value
