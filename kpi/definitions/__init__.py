"""Definitions: segments (named sets of respondents) and KPI targets; their rules, their
writes (admin, API, loader alike), their admin and API. See docs/architecture.md."""
