"""Shared set-up of the fault tests: static files for the production-mode web server."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test.utils import override_settings


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Collected static files with the manifest production needs to name them (pages
    link to hashed names), without WhiteNoise's compressed copies: the tests fetch no
    static file, and compressing them is slow (as bench/submit.py does)."""
    root = tmp_path_factory.mktemp("static")
    manifest = "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
    storages = {**settings.STORAGES, "staticfiles": {"BACKEND": manifest}}
    with override_settings(STATIC_ROOT=root, STORAGES=storages):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root
