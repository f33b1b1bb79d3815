"""Scoring: counting respondents, the pure statistics, runs and their results, the tasks
that execute and schedule them, and a result in words. See docs/architecture.md."""
