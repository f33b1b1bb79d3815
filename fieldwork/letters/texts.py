"""What a letter says, per language: every fixed word printed on a letter, in one place.

The renderer (``render``) draws these strings at their positions and fills in the
letter's own values (name, dates, reference, link, the study's purpose); to change the
wording, or to add a language, edit this module only (and ``letter.LANGUAGES``). The
Japanese is written as a municipality writes to a resident; the English is its
counterpart, not a word-for-word translation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Wording:
    title: str  # the letter's heading
    greeting: str  # "{name}" is replaced by the addressee's name
    request: str  # the paragraph after the study's purpose
    closing: str  # set flush right
    honorific: str  # after the name in the envelope window ("" for none)
    reference_label: str  # before the reference, right of the window
    deadline_label: str  # before the deadline, in the framed box
    how_title: str  # over the instructions beside the QR code
    how: tuple[str, ...]  # the instructions, a line each
    personal: str  # the warning not to pass the link on
    link_label: str  # over the link typed out
    line_title: str  # over the LINE box (letters with a LINE link code only)
    line_steps: tuple[str, ...]  # "{account}" is replaced by the official account's ID
    line_code_label: str  # before the code
    document_title: str  # the PDF's title (shown by viewers)


WORDING = {
    "ja": Wording(
        title="アンケートへのご協力のお願い",
        greeting="拝啓　時下ますますご清祥のこととお喜び申し上げます。",
        request=(
            "つきましては、ご多用のところ誠に恐縮ですが、アンケートへのご回答にご協力"
            "くださいますよう、お願い申し上げます。"
        ),
        closing="敬具",
        honorific="　様",
        reference_label="整理番号　",
        deadline_label="回答期限　　",
        how_title="回答方法",
        how=(
            "1. スマートフォンのカメラで、左のQRコードを読み取ってください。",
            "2. パソコン等からは、下のアドレスをブラウザに入力してください。",
        ),
        personal="このアドレスはあなた専用です。他の方に渡さないでください。",
        link_label="回答用アドレス",
        line_title="LINEでお知らせを受け取る場合（任意）",
        line_steps=(
            "1. 右のQRコードを読み取るか、LINEで「{account}」を検索して、公式アカウントを"
            "友だち追加してください。",
            "2. そのトークで、下の連携コードを送ってください。締切前のお知らせをLINEで"
            "お届けします。",
        ),
        line_code_label="連携コード　",
        document_title="アンケートご協力のお願い",
    ),
    "en": Wording(
        title="Request to take part in a survey",
        greeting="Dear {name},",
        request=(
            "We would be grateful if you could spare a few minutes to answer our questionnaire."
        ),
        closing="Yours sincerely",
        honorific="",
        reference_label="Reference: ",
        deadline_label="Please answer by\u2002",
        how_title="How to answer",
        how=(
            "1. Scan the QR code on the left with your smartphone's camera.",
            "2. Or type the address below into a web browser.",
        ),
        personal="This address is yours alone: please do not pass it on.",
        link_label="Your address for the questionnaire",
        line_title="Reminders in LINE (optional)",
        line_steps=(
            "1. Scan the QR code on the right, or search LINE for {account}, and add our "
            "official account as a friend.",
            "2. Send it the link code below in the chat: we will then remind you in LINE "
            "before the deadline.",
        ),
        line_code_label="Link code: ",
        document_title="Survey letters",
    ),
}

_WEEKDAYS_JA = "月火水木金土日"
MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def format_date(day: date, language: str, *, weekday: bool = False) -> str:
    """A date as a letter prints it: 2027年1月15日（金） or Friday 15 January 2027."""
    if language == "ja":
        text = f"{day.year}年{day.month}月{day.day}日"
        return text + f"（{_WEEKDAYS_JA[day.weekday()]}）" if weekday else text
    text = f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"
    return f"{WEEKDAYS_EN[day.weekday()]} {text}" if weekday else text
