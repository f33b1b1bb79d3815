"""Where things sit on the sheet: the envelope window, in millimetres from the sheet's
top-left corner (A4 portrait, 210 × 297 mm). The renderer draws at these values
and the tests check the printed text against them, so they are stated once, here.

The envelope is a 長形3号 (120 × 235 mm, the JIS size of the 定形 letter Japanese
municipalities post A4 in) with an address window; the sheet is folded in three (the
top third, 99 mm high, facing the window) and slid in. Japan Post asks for an address
window of at least 45 × 80 mm (as envelope makers quote its rules, e.g. Imura's
"封筒の知識: 窓について"). The window assumed here, 90 × 45 mm with its top-left corner
23 mm from the envelope's left edge and 13 mm from its top edge (the envelope held so
the window runs along its length), is a typical ready-made 長3 window; the figures vary
by maker and were not checked against a maker's data sheet or a physical envelope in
this landing. Read on the sheet, with the sheet's left and top edges at the envelope's
(how the folded sheet rests in it), that is ``WINDOW`` below; a municipality that buys
another envelope changes ``WINDOW`` here (the renderer and the tests follow it).

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
SIDE_WIDTH = PAGE_WIDTH - SIDE_LEFT - MARGIN_RIGHT
HEAD_HEIGHT = 68.0

# The QR code's full width, quiet zone included. A link of up to ~100 characters gives a
# version 5 to 7 symbol (37 to 45 modules with the 4-module quiet zone on each side): the
# symbol itself is then 28 to 30 mm wide and a module at least 0.6 mm, which a phone reads
# from paper at arm's length.
QR_SIZE = 36.0
QR_BORDER = 4
QR_GAP = 6.0  # between the code and the instructions beside it
QR_INDENT = QR_SIZE + QR_GAP
FOLD_2 = 2 * FOLD
# The LINE box's add-friend QR code (``https://line.me/R/ti/p/%40<id>``, ~35 characters: a
# version 2 or 3 symbol): 22 mm with its quiet zone, a module about 0.65 mm, well under the
# link's so that the link's stays the one a reader's eye (and camera) goes to.
LINE_QR_SIZE = 22.0
