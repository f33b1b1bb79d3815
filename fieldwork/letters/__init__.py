"""Printed letters: each participant's invitation on paper, with their link as a QR code.

``render_letters(letters) -> bytes`` prints a sequence of ``Letter`` values (plain data,
no ORM: the fieldwork app maps its models to them) as one PDF, an A4 page per letter, in
Japanese or English per letter; ``render_letters_batched`` does it in batches with
progress. ``layout`` places the address where a 長3 window envelope shows it; ``texts``
holds the wording; ``render`` draws the pages with ReportLab.
"""

from .letter import Letter
from .render import render_letters, render_letters_batched

__all__ = ["Letter", "render_letters", "render_letters_batched"]
