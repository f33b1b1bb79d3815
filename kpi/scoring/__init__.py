"""Scoring: counting respondents, the pure statistics, runs and their results, the tasks
that execute and schedule them, and a result in words. See docs/architecture.md."""

#: The version of the computing rules: how respondents are counted into bases and
#: numerators (``counting``), the intervals and the verdicts (``statistics``). Registered
#: with every KPI specification (kpi/registration): bump it with any change that can move
#: a figure or a verdict.
RULES_VERSION = "1"
