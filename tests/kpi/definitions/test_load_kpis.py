"""``manage.py load_kpis STUDY FILE``: the file's segments and KPIs into a study, recorded
as made by the command (and by ``--by``'s account); a file with refused items loads
nothing and names each of them."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import translation

from kpi.definitions.loading import kpis_path
from kpi.models import KPI, Segment


def test_it_loads_the_reference_kpis_into_a_study_with_who_and_how(study):
    user = User.objects.create_user("loader", password="pw-loader-1234")
    path = kpis_path()
    assert path is not None
    out = StringIO()
    call_command("load_kpis", study.code, str(path), "--by", "loader", stdout=out)
    assert "Loaded 11 KPIs" in out.getvalue()
    assert KPI.objects.filter(study=study).count() == 11
    kpi = KPI.objects.get(study=study, code="reassured")
    record = kpi.history.get()  # type: ignore[attr-defined]
    assert (record.history_user, record.history_change_reason) == (user, "command: load_kpis")


BAD = """
format = 1

[[segments]]
code = "ok"
name_ja = "良い"
clauses = [{ question = "reassured", choices = ["agree"] }]

[[segments]]
code = "wrong_choice"
name_ja = "誤り"
clauses = [{ question = "reassured", choices = ["fully"] }]

[[kpis]]
code = "fine"
kind = "share"
base = "respondents"
numerator = "ok"
name_ja = "良い"

[[kpis]]
code = "huge"
kind = "share"
base = "respondents"
numerator = "ok"
name_ja = "大きすぎ"
comparator = ">="
threshold = "150"

[[kpis]]
code = "nan"
kind = "share"
base = "respondents"
numerator = "ok"
name_ja = "数でない"
comparator = ">="
threshold = "NaN"
"""


def test_a_file_with_refused_items_loads_nothing_and_names_each(study, tmp_path: Path):
    path = tmp_path / "kpis.toml"
    path.write_text(BAD, encoding="utf-8")
    with translation.override("en"), pytest.raises(CommandError) as raised:
        call_command("load_kpis", study.code, str(path))
    message = str(raised.value)
    assert "nothing was loaded; 3 item(s) refused" in message
    assert "segment wrong_choice: question 'reassured' has no choice fully" in message
    assert "kpi huge: threshold: A share's target is a percentage between 0 and 100." in message
    assert "kpi nan: threshold: 'NaN' is not a number" in message
    assert not Segment.objects.filter(study=study).exists()
    assert not KPI.objects.filter(study=study).exists()


def test_an_unknown_study_user_or_file_is_a_clear_error(study, tmp_path: Path):
    with pytest.raises(CommandError, match="There is no study 'nope'"):
        call_command("load_kpis", "nope", "x.toml")
    with pytest.raises(CommandError, match="There is no user 'ghost'"):
        call_command("load_kpis", study.code, "x.toml", "--by", "ghost")
    with pytest.raises(CommandError, match=r"x\.toml"):
        call_command("load_kpis", study.code, str(tmp_path / "x.toml"))
