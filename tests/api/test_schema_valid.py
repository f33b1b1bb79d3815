"""The published OpenAPI schema is valid OpenAPI 3 and generates without warnings."""

from __future__ import annotations

from django.core.management import call_command


def test_the_schema_validates_against_the_openapi_3_specification(tmp_path):
    out = tmp_path / "schema.yml"
    # --validate checks the document against the OpenAPI 3 JSON schema; --fail-on-warn
    # turns any generation warning (an undocumented field, a guessed type) into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert text.startswith("openapi: 3.")
    assert "/api/v1/invitations/{token}/submission/" in text
