"""The admin's frame: no "View site" link to a page that does not exist, and the editable
fields of a list labelled for screen readers."""

from __future__ import annotations

import html as markup
import re

from django.contrib.auth.models import User
from django.urls import reverse


def test_there_is_no_view_site_link(db, client):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    html = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    user_tools = re.search(r'<div id="user-tools">(.*?)</div>', html, re.S).group(1)
    assert "View site" not in user_tools
    assert 'href="/"' not in user_tools
    # What it pointed to answers 404: there is no public home page to view.
    assert client.get("/").status_code == 404


def test_the_editable_order_of_each_kpi_is_labelled_with_its_kpi(reference_study, client):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    html = client.get(
        reverse("admin:kpi_kpi_changelist"), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    inputs = re.findall(r'<input[^>]*name="form-\d+-order"[^>]*>', html)
    assert inputs
    labels = [markup.unescape(re.search(r'aria-label="([^"]*)"', i).group(1)) for i in inputs]
    names = set(reference_study.kpis.values_list("name_en", flat=True))
    assert {label.split(": ", 1)[1] for label in labels} <= names | set(
        reference_study.kpis.values_list("name_ja", flat=True)
    )
    assert all(label.startswith("Display order: ") for label in labels)
