"""Client configuration for a served model: an OpenCode provider entry (opencode.json).

Shape from OpenCode's docs ("Custom provider"): provider.<id>.npm "@ai-sdk/openai-compatible",
options.baseURL ending in /v1, options.apiKey "{env:VAR}", models.<model id>.limit.context.
The token itself is never written: only the name of the variable that holds it.
"""

from __future__ import annotations

from typing import Any

from sparktop.catalog.entry import ModelEntry
from sparktop.servers.http import base_url

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
        url = base_url(host or proxy.host, proxy.port) + "/v1"
    else:
        url = base_url(host or serve.host, serve.port) + "/v1"
    options: dict[str, Any] = {"baseURL": url}
    if proxy is not None and proxy.requires_token and proxy.token_env:
        options["apiKey"] = "{env:" + proxy.token_env + "}"
    model: dict[str, Any] = {"name": entry.description or serve.served_name}
    if serve.context:
        limit: dict[str, int] = {"context": serve.context}
        limit["output"] = output_tokens or min(32768, serve.context // 4)
        model["limit"] = limit
    return {
        "$schema": SCHEMA,
        "provider": {
            provider_id: {
                "npm": "@ai-sdk/openai-compatible",
                "name": f"sparktop ({serve.served_name})",
                "options": options,
                "models": {serve.served_name: model},
            }
        },
        "model": f"{provider_id}/{serve.served_name}",
    }
