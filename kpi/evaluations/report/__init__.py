"""The evaluation report: the PDF a municipality publishes and an auditor verifies.

``render.render_pdf(evaluation, draft=..., language=None)`` renders it from the
evaluation's frozen snapshot; ``context`` builds what the templates
(``templates/kpi/report/``) show, ``charts`` lays out the SVG charts, ``fetcher`` confines
WeasyPrint to ``static/``.

The package itself imports none of them: ``charts`` is also drawn on fieldwork's watch
page (admin), and importing ``render`` would load WeasyPrint (about a second of CPU) in
every process at start (see ``kpi/evaluations/rendering.py``).
"""
