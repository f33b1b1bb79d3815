"""The REST API's project-wide parts: authentication, errors, pagination, schema, routes.

The endpoints themselves live in ``surveys/api/`` and ``kpi/api/``.
"""
