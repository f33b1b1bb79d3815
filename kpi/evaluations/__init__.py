"""Evaluations: a run's results frozen into a report, signed off, rendered to a signed
PDF, withdrawn. See docs/architecture.md."""
