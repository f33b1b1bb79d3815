"""Where things sit on the sheet: the envelope window, in millimetres from the sheet's
top-left corner (A4 portrait, 210 × 297 mm). The stylesheet is rendered from these values
and the tests check the printed text against them, so they are stated once, here.

The envelope is a 長形3号 (120 × 235 mm, JIS S 5502) with an address window, the envelope
a Japanese municipality posts A4 letters in, the sheet folded in three (Z-fold, the top
third facing out, 99 mm high) and slid in with its left edge first. Japan Post requires
an address window of at least 45 × 80 mm (its guideline for window envelopes, "窓付き封筒の
注意事項"); the common ready-made 長3 window envelope has a window of 90 × 45 mm whose
top-left corner is 23 mm from the envelope's left edge and 13 mm from its top edge, read
with the envelope turned so the window lies along its length. Read on the sheet, that
window is the rectangle ``WINDOW`` below (the sheet's left and top edges at the
envelope's, which is how the folded sheet rests in it).

A folded sheet is 99 × 210 mm in a 120 × 235 mm envelope, so it can slide. The address
is printed inside ``SAFE``, the window shrunk by ``PLAY`` on every side, so a shift of up
to 5 mm still shows all of it; and nothing else is printed within ``PLAY`` of the window
(``CLEAR``), so a shift shows no other text through it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rect:
    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def inset(self, by: float) -> Rect:
        return Rect(self.left + by, self.top + by, self.width - 2 * by, self.height - 2 * by)

    def contains(self, left: float, top: float, right: float, bottom: float) -> bool:
        return (
            self.left <= left and right <= self.right and self.top <= top and bottom <= self.bottom
        )

    def overlaps(self, left: float, top: float, right: float, bottom: float) -> bool:
        return left < self.right and self.left < right and top < self.bottom and self.top < bottom


PAGE_WIDTH = 210.0
PAGE_HEIGHT = 297.0
FOLD = PAGE_HEIGHT / 3  # the two folds, at 99 and 198 mm

WINDOW = Rect(left=23.0, top=13.0, width=90.0, height=45.0)
PLAY = 5.0
SAFE = WINDOW.inset(PLAY)  # 28..108 × 18..53 mm: the address block
CLEAR = WINDOW.inset(-PLAY)  # 18..118 × 8..63 mm: nothing but the address

# The page's margins (continuation pages and the letter's body use them).
MARGIN_TOP = 15.0
MARGIN_RIGHT = 17.0
MARGIN_BOTTOM = 15.0
MARGIN_LEFT = 20.0

# The head of the first page (sheet coordinates): reference and date, then the sender,
# both right of the clear zone; the letter's title starts below it.
SIDE_LEFT = CLEAR.right + 2.0  # 120 mm
HEAD_HEIGHT = 68.0

# The QR code's full width, quiet zone included. A link of up to ~100 characters gives a
# version 5 to 7 symbol (37 to 45 modules with the 4-module quiet zone on each side): the
# symbol itself is then 28 to 30 mm wide and a module at least 0.6 mm, which a phone reads
# from paper at arm's length.
QR_SIZE = 36.0
QR_BORDER = 4
