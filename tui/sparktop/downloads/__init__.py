"""Hugging Face downloads: plan, transfer with resume, verify, watch (no Textual)."""
