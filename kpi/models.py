"""KPI targets, scoring runs and evaluations (see the issue "KPI engine")."""
