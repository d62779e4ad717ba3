"""Client configuration for a served model: an OpenCode provider entry (opencode.json).

Shape from OpenCode's docs ("Custom provider"): provider.<id>.npm "@ai-sdk/openai-compatible",
options.baseURL ending in /v1, options.apiKey "{env:VAR}", models.<model id>.limit.context.
The token itself is never written: only the name of the variable that holds it.
"""

from __future__ import annotations

from typing import Any

from sparktop.catalog.entry import ModelEntry
from sparktop.servers.http import base_url
from sparktop.servers.info import ServerInfo

SCHEMA = "https://opencode.ai/config.json"


def opencode_entry(
    entry: ModelEntry,
    *,
    host: str | None = None,
    provider_id: str = "sparktop",
    output_tokens: int | None = None,
) -> dict[str, Any]:
    """An opencode.json fragment; baseURL goes through the proxy when the entry has one."""
    serve = entry.serve
    proxy = serve.proxy
    if proxy is not None:
        url = base_url(host or proxy.host, proxy.port)
    else:
        url = base_url(host or serve.host, serve.port)
    token_env = proxy.token_env if proxy is not None and proxy.requires_token else None
    return opencode_provider(
        serve.served_name, url, context=serve.context, title=entry.description,
        token_env=token_env, provider_id=provider_id, output_tokens=output_tokens,
    )  # fmt: skip


def opencode_for_server(
    server: ServerInfo, *, host: str | None = None, provider_id: str = "sparktop"
) -> dict[str, Any]:
    """The same fragment for a running server no catalog entry describes: its address,
    served name and context as the server reports them."""
    if server.port is None:
        raise ValueError(f"{server.name} has no known port")
    url = base_url(host or server.host, server.port)
    return opencode_provider(server.name, url, context=server.context, provider_id=provider_id)


def opencode_provider(
    model_id: str,
    url: str,
    *,
    context: int | None = None,
    title: str = "",
    token_env: str | None = None,
    provider_id: str = "sparktop",
    output_tokens: int | None = None,
) -> dict[str, Any]:
    """An opencode.json fragment for `model_id` served at base `url` (without /v1)."""
    options: dict[str, Any] = {"baseURL": url + "/v1"}
    if token_env:
        options["apiKey"] = "{env:" + token_env + "}"
    model: dict[str, Any] = {"name": title or model_id}
    if context:
        limit: dict[str, int] = {"context": context}
        limit["output"] = output_tokens or min(32768, context // 4)
        model["limit"] = limit
    return {
        "$schema": SCHEMA,
        "provider": {
            provider_id: {
                "npm": "@ai-sdk/openai-compatible",
                "name": f"sparktop ({model_id})",
                "options": options,
                "models": {model_id: model},
            }
        },
        "model": f"{provider_id}/{model_id}",
    }
