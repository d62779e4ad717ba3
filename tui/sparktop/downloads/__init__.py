"""Hugging Face downloads: plan, transfer with resume, verify, remember, and watch the ones
started elsewhere; `manager` runs several at once for both faces.

May import: the base modules (and huggingface_hub, and the filelock it brings). Nothing else
of sparktop: the catalog builds on these files, not the other way round. Never Textual.
"""
