"""``manage.py demo_fieldwork``: the fieldwork part of ``make demo`` (after ``manage.py
demo``, which loads the reference study; ``kpi`` knows nothing of fieldwork, so this is
its own command).

For the reference study it sets, once: a sender per site (the municipality, an example
address on a reserved domain, a postal sender block), and synthetic contact details for
the participants who have not answered (most with an e-mail address on example.com, some
with only a fictional postal address, a few with a made-up LINE user id beside their
e-mail). Then a campaign: the invitation now, a reminder 7 days after the last message (at
most 2), quiet hours 21:00-08:00 Japan time (none if the demo runs inside them: the
invitation would wait until 08:00), LINE first, then e-mail, then a letter. It is run as
the beat would run it: the scheduler turns what is due into deliveries, the e-mail and
LINE sweeps send them (Celery runs in-process; the e-mails land as files under var/mail/;
LINE is off unless configured, so its messages fail and the scheduler's next run hands
them to e-mail), and the participants with only a postal address are on the letter list,
rendered as one PDF. It prints the e-mail folder, the PDF's path and the URL of the study's
fieldwork page.

Run again, it adds nothing and prints the same: senders and contact details are set to the
same values, the campaign exists, and nothing more is due until its first reminder. The
letters stay on the letter list (``manage.py letters --queued`` prints them and marks them
sent); the PDF is rendered again from it.

The reference sites have no closing date, so the letters' deadline is passed to the
renderer: 14 days from today (Japan time). The study itself is not changed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from fieldwork.campaigns.rules import JAPAN, QuietHours
from fieldwork.campaigns.services import campaign_save
from fieldwork.contacts import contacts_import_csv
from fieldwork.letters.build import letters_build
from fieldwork.letters.printing import letters_pdf_file
from fieldwork.models import Campaign, Delivery, Sender
from fieldwork.tasks import schedule_campaigns, send_email_deliveries, send_line_deliveries
from surveys.history import AuditedCommand
from surveys.loading import REFERENCE_STUDY, read_toml
from surveys.models import Participant, Response, Site, Study

DEADLINE_DAYS = 14
CAMPAIGN_NAME = "デモ：回答のお願い / Demo: invitation and reminders"
QUIET = QuietHours(start=dt.time(21, 0), end=dt.time(8, 0))
# The reminder in the campaign's own words (the invitation uses the channels' standard
# text): the placeholders of fieldwork/campaigns/templating.py.
REMINDER_JA = (
    "{差出人}です。先日ご案内した「{調査名}」のアンケートに、まだご回答いただいていない方に"
    "お送りしています。\n\n5分ほどで終わります。こちらからお答えください：\n{リンク}\n\n"
    "すでにご回答いただいた方には、行き違いをお詫びいたします。"
)
REMINDER_EN = (
    "This is {sender}. We are writing to those who have not yet answered the questionnaire "
    "of “{study}”.\n\nIt takes about five minutes. Please answer here:\n{link}\n\n"
    "If you have already answered, thank you, and please disregard this message."
)

# The municipalities as senders: names as they write them, addresses on a reserved
# domain (example.jp is reserved by JPRS), sender blocks at a fictional "Mihon-cho" (the
# letter prints the display name above the block).
SENDERS: dict[str, dict[str, str]] = {
    "setagaya": {
        "display_name_ja": "世田谷区 子ども・若者部",
        "display_name_en": "Setagaya City, Children and Youth Division",
        "from_address": "kosodate@setagaya.example.jp",
        "postal_block_ja": "\n".join(
            (
                "〒000-0001 東京都世田谷区見本町1-1（架空）",
                "電話 03-0000-0001",
            )
        ),
        "postal_block_en": "\n".join(
            (
                "1-1 Mihon-cho (fictional), Setagaya, Tokyo 000-0001",
                "Tel. 03-0000-0001",
            )
        ),
    },
    "itabashi": {
        "display_name_ja": "板橋区 子ども家庭部",
        "display_name_en": "Itabashi City, Children and Families Division",
        "from_address": "kosodate@itabashi.example.jp",
        "postal_block_ja": "\n".join(
            (
                "〒000-0002 東京都板橋区見本町2-2（架空）",
                "電話 03-0000-0002",
            )
        ),
        "postal_block_en": "\n".join(
            (
                "2-2 Mihon-cho (fictional), Itabashi, Tokyo 000-0002",
                "Tel. 03-0000-0002",
            )
        ),
    },
    "fuchu": {
        "display_name_ja": "府中市 子ども家庭部",
        "display_name_en": "Fuchu City, Children and Families Division",
        "from_address": "kosodate@fuchu.example.jp",
        "postal_block_ja": "\n".join(
            (
                "〒000-0003 東京都府中市見本町3-3（架空）",
                "電話 042-000-0003",
            )
        ),
        "postal_block_en": "\n".join(
            (
                "3-3 Mihon-cho (fictional), Fuchu, Tokyo 000-0003",
                "Tel. 042-000-0003",
            )
        ),
    },
}


@dataclass(frozen=True)
class Plan:
    """Which kind of contact details the n-th participant without an answer gets (in the
    order of site and reference): every 8th only a postal address, every 10th (of the
    rest) a LINE user id beside the e-mail address, every 5th writes in English."""

    email: bool
    line: bool
    english: bool

    @classmethod
    def of(cls, n: int) -> Plan:
        postal_only = n % 8 == 7
        return cls(email=not postal_only, line=not postal_only and n % 10 == 3, english=n % 5 == 4)


def contact_row(n: int, participant: Participant) -> dict[str, str]:
    """The synthetic contact details of the n-th participant without an answer: obviously
    fake (reserved domains, a "Mihon-cho" that does not exist, a LINE id of zeros)."""
    plan = Plan.of(n)
    site = participant.site
    ref = participant.reference
    row = {
        "reference": ref,
        "site": site.code,
        "email": f"{site.code}.{ref}@example.com".lower() if plan.email else "",
        "line_user_id": f"U{'0' * 24}{n + 1:08x}" if plan.line else "",
        "postal_name": "",
        "postal_address": "",
        "language": "en" if plan.english else "ja",
    }
    if not plan.email:
        if plan.english:
            row["postal_name"] = f"Demo Participant {n + 1}"
            row["postal_address"] = (
                f"{n + 1}-1 Mihon-cho (fictional)\n{site.name_en}, Tokyo 000-00{n % 100:02d}"
            )
        else:
            row["postal_name"] = f"見本 花子 {n + 1}"
            row["postal_address"] = (
                f"〒000-00{n % 100:02d}\n東京都{site.name_ja}見本町{n + 1}-1\n"
                "（デモ用の架空の住所）"
            )
    return row


class Command(AuditedCommand):
    help = (
        "The demo's fieldwork (after manage.py demo): senders, synthetic contact details, "
        "the e-mail invitations delivered as files, the letters PDF, the fieldwork page."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--letters-out",
            help="where to write the letters PDF (default var/demo/letters-<study>.pdf)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("The demo is for embedded mode only (HYOKA_ENV=production is set).")
        code = read_toml(REFERENCE_STUDY)["code"]
        study = Study.objects.filter(code=code).first()
        if study is None:
            raise CommandError(f"There is no study {code!r}: run manage.py demo first.")
        today = timezone.localdate()
        deadline = today + dt.timedelta(days=DEADLINE_DAYS)
        waiting = self._waiting(study)

        senders = self._senders(study)
        rows = [contact_row(n, p) for n, p in enumerate(waiting)]
        if rows:
            with transaction.atomic():
                contacts_import_csv(study=study, data=_csv(rows))
        with_email = [p for p, row in zip(waiting, rows, strict=True) if row["email"]]
        postal_only = [p for p, row in zip(waiting, rows, strict=True) if not row["email"]]
        line = sum(1 for row in rows if row["line_user_id"])

        campaign, quiet_note = self._campaign(study)
        # As the beat runs it: the scheduler, the sweeps; LINE's failures (LINE off) fall
        # through to e-mail at the scheduler's next run, whose messages the sweep sends.
        for _round in range(2):
            schedule_campaigns.delay()
            send_line_deliveries.delay()
            send_email_deliveries.delay()
        mine = Delivery.objects.filter(campaign=campaign)
        sent = mine.filter(status=Delivery.Status.SENT)
        on_list = mine.filter(channel=Delivery.Channel.LETTER, status=Delivery.Status.QUEUED)
        line_failed = mine.filter(channel=Delivery.Channel.LINE, status=Delivery.Status.FAILED)
        letters_path = self._letters(
            study,
            list(on_list.values_list("participant_id", flat=True)),
            deadline,
            options.get("letters_out"),
        )

        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Fieldwork demo:"))
        self.stdout.write(f"  Senders: {senders} sites ({', '.join(SENDERS)})")
        self.stdout.write(
            f"  Contact details (synthetic) for the {len(waiting)} participants who have not "
            f"answered: {len(with_email)} e-mail ({line} of them also LINE), "
            f"{len(postal_only)} postal address only"
        )
        self.stdout.write(
            f"  Campaign “{campaign.name}” (#{campaign.pk}): invitation from "
            f"{campaign.starts_at.astimezone(JAPAN):%Y-%m-%d %H:%M} Japan time, a reminder "
            f"{campaign.reminder_after_days} days after the last message (at most "
            f"{campaign.max_reminders}), {quiet_note}"
        )
        self.stdout.write(
            f"  E-mails sent: {sent.filter(channel=Delivery.Channel.EMAIL).count()} "
            f"(written as files in {_mail_folder()})"
        )
        self.stdout.write(
            f"  LINE: {sent.filter(channel=Delivery.Channel.LINE).count()} sent, "
            f"{line_failed.count()} failed and handed to e-mail"
            + ("" if settings.LINE_ENABLED else " (LINE is off: no channel secret and token)")
        )
        self.stdout.write(
            f"  Letter list: {on_list.count()} letters (deadline {deadline.isoformat()}, "
            f"{DEADLINE_DAYS} days from today; the sites have no closing date): {letters_path}"
        )
        self.stdout.write(
            f"    print and mark them sent: manage.py letters --study {study.code} --queued "
            f"--deadline {deadline.isoformat()} --out letters.pdf"
        )
        url = reverse("admin:fieldwork_studyfieldwork_change", args=[study.pk])
        self.stdout.write(f"  Fieldwork page: {settings.SITE_URL}{url}")
        campaign_url = reverse("admin:fieldwork_campaign_change", args=[campaign.pk])
        self.stdout.write(f"  Campaign (preview, next messages): {settings.SITE_URL}{campaign_url}")

    def _campaign(self, study: Study) -> tuple[Campaign, str]:
        """The demo's campaign, created (and started now) on the first run."""
        campaign = Campaign.objects.filter(study=study, name=CAMPAIGN_NAME).first()
        if campaign is None:
            now = timezone.now()
            # A start inside the quiet hours is refused (the invitation would wait for
            # their end): the demo then has none, so that its invitations go now.
            quiet = QuietHours(start=dt.time(0, 0), end=dt.time(0, 0))
            if not QUIET.contains(now):
                quiet = QUIET
            campaign = campaign_save(
                campaign=Campaign(
                    study=study,
                    name=CAMPAIGN_NAME,
                    starts_at=now,
                    audience=Campaign.Audience.NOT_SUBMITTED,
                    reminder_after_days=7,
                    max_reminders=2,
                    quiet_from=quiet.start,
                    quiet_until=quiet.end,
                    channel_order=Campaign.ChannelOrder.LINE_EMAIL,
                    reminder_ja=REMINDER_JA,
                    reminder_en=REMINDER_EN,
                    active=True,
                ),
                sites=[],
                now=now,
            )
        if campaign.quiet_from == campaign.quiet_until:
            note = (
                "no quiet hours (the demo was started inside 21:00-08:00 Japan time, when a "
                "campaign cannot start; set them in the admin)"
            )
        else:
            note = (
                f"no messages {campaign.quiet_from:%H:%M}-{campaign.quiet_until:%H:%M} Japan time"
            )
        return campaign, note

    def _waiting(self, study: Study) -> list[Participant]:
        """The active participants who have not answered, by site and reference."""
        return list(
            Participant.objects.filter(site__study=study, status=Participant.Status.ACTIVE)
            .exclude(erasure__isnull=False)
            .exclude(response__status=Response.Status.SUBMITTED)
            .select_related("site")
            .order_by("site__code", "reference")
        )

    def _senders(self, study: Study) -> int:
        count = 0
        for site in Site.objects.filter(study=study, code__in=SENDERS):
            if not Sender.objects.filter(site=site).exists():
                Sender.objects.create(site=site, **SENDERS[site.code])
            count += 1
        return count

    def _letters(
        self,
        study: Study,
        participants: list[int],
        deadline: dt.date,
        out: str | None,
    ) -> Path:
        path = (
            Path(out)
            if out
            else Path(settings.BASE_DIR) / "var" / "demo" / f"letters-{study.code}.pdf"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        built = letters_build(participants, deadline=deadline)
        if built.skipped:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(built.skipped_counts.items()))
            raise CommandError(f"Some letters could not be made ({reasons}).")
        letters_pdf_file(built.letters, path)
        return path.resolve()


def _csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["reference"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _mail_folder() -> str:
    path = getattr(settings, "EMAIL_FILE_PATH", "")
    if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend") and path:
        return str(Path(path).resolve())
    return f"(not files: EMAIL_BACKEND is {settings.EMAIL_BACKEND})"
