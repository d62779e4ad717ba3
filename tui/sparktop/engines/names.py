"""The engines' names, as the catalog, the config and the server records spell them.

Written once here so no other module carries an engine's name as a string literal.
"""

from __future__ import annotations

LLAMA_CPP = "llama.cpp"
VLLM = "vllm"
SGLANG = "sglang"
COMMAND = "command"
"""Any server the catalog starts from a full argv of its own (no engine-specific knowledge)."""
