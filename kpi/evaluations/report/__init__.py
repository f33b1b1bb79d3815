"""The evaluation report: the PDF a municipality publishes and an auditor verifies.

``render_pdf(evaluation, draft=..., language=None)`` renders it from the evaluation's
frozen snapshot; ``context`` builds what the templates (``templates/kpi/report/``) show,
``charts`` lays out the SVG charts, ``fetcher`` confines WeasyPrint to ``static/``.
"""

from .render import render_html, render_pdf

__all__ = ["render_html", "render_pdf"]
