"""PDF: a paged table report (fpdf2) with a title, the request, window, timezone and page numbers.

Rows are set in a monospaced font, one line of fixed-width cells each, so a frame becomes its page
lines in one polars expression and each line costs one drawing call. fpdf2 keeps a document in
memory until it is closed, so one PDF file holds at most ``max_rows`` rows.
"""

from __future__ import annotations

import polars as pl
from fpdf import FPDF

from exporter.rendering.sinks import BinarySink
from exporter.rendering.table import longest_text
from exporter.rendering.writers import Document, TableWriter

PAGE_WIDTH, PAGE_HEIGHT, MARGIN = 297.0, 210.0, 10.0  # A4 landscape, mm
# Rows are bands of LINE_HEIGHT from BODY_TOP down; text sits on a baseline BASELINE into its band.
BODY_TOP, BODY_BOTTOM, LINE_HEIGHT, BASELINE = 33.0, PAGE_HEIGHT - 14.0, 4.0, 2.8
FONT_SIZE = 8.0
# Courier's glyphs are 600/1000 of the font size wide; 72 points to the inch, 25.4 mm to the inch.
CHAR_WIDTH = 0.6 * FONT_SIZE * 25.4 / 72
LINE_CHARS = int((PAGE_WIDTH - 2 * MARGIN) / CHAR_WIDTH)
SEPARATOR = "  "
MIN_COLUMN_CHARS, MAX_COLUMN_CHARS = 6, 40
# Only the first frame sets the widths: numbers get room for what later frames may bring.
MIN_NUMBER_CHARS = 16
ELLIPSIS = "…"
ZEBRA_GREY = 242
# The core fonts speak Windows-1252; anything else would stop fpdf2, so it becomes "?".
_CP1252_EXTRAS = "".join(bytes([code]).decode("cp1252", errors="ignore") for code in range(0x80, 0xA0))
_NOT_CP1252 = f"[^\\x{{20}}-\\x{{7E}}\\x{{A0}}-\\x{{FF}}{_CP1252_EXTRAS}]"
_LINE_BREAKS = "[\t\r\n]"


def column_chars(table: pl.DataFrame, labels: tuple[str, ...]) -> list[int]:
    """Each column as wide as its label or longest value in ``table``, all within one line.

    Only the first frame is seen before drawing starts, so numbers get room for longer ones and
    text columns share what is left of the line, for the longer texts that later frames may bring.
    """
    widths, texts = [], []
    for index, (label, (name, dtype)) in enumerate(zip(labels, table.schema.items(), strict=True)):
        content = longest_text(table[name])
        least = MIN_NUMBER_CHARS if dtype.is_numeric() else MIN_COLUMN_CHARS
        widths.append(min(MAX_COLUMN_CHARS, max(least, len(label), content)))
        if dtype == pl.String:
            texts.append(index)
    room = LINE_CHARS - len(SEPARATOR) * (len(widths) - 1)
    # Narrow the widest column, one character at a time, until the row fits the page...
    while sum(widths) > room and max(widths) > MIN_COLUMN_CHARS:
        widths[widths.index(max(widths))] -= 1
    # ... or widen the text columns, in turn, while there is room.
    while sum(widths) < room and (growing := [i for i in texts if widths[i] < MAX_COLUMN_CHARS]):
        for index in growing[: room - sum(widths)]:
            widths[index] += 1
    return widths


def fixed_width(text: pl.Expr, width: int, right: bool) -> pl.Expr:
    """Printable text cut to ``width`` characters (an ellipsis marks the cut) and padded to it."""
    text = text.str.replace_all(_LINE_BREAKS, " ").str.replace_all(_NOT_CP1252, "?")
    cut = pl.when(text.str.len_chars() > width).then(text.str.slice(0, width - 1) + ELLIPSIS).otherwise(text)
    return cut.str.pad_start(width) if right else cut.str.pad_end(width)


def printable(text: str) -> str:
    """Heading text as the core fonts can print it."""
    return text.encode("cp1252", errors="replace").decode("cp1252")


class _Report(FPDF):
    def __init__(self, document: Document) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.document = document
        self.header_line = ""
        self.core_fonts_encoding = "windows-1252"
        self.set_auto_page_break(False)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_title(document.title)
        # An alias as wide as any page count, so centring the footer never warns.
        self.alias_nb_pages("{pagecount}")
        self.set_creator("exporter")

    def header(self) -> None:
        document = self.document
        self.set_font("helvetica", "B", 13)
        self.set_xy(MARGIN, MARGIN)
        self.cell(0, 7, printable(document.title))
        self.set_font("helvetica", "", 8)
        self.set_xy(MARGIN, MARGIN + 8)
        request = document.request_name or "(unnamed)"
        heading = f"Request: {request}    Window: {document.window_text}    Timezone: {document.timezone}"
        self.cell(0, 4, printable(heading))
        self.set_fill_color(ZEBRA_GREY - 20)
        top = BODY_TOP - LINE_HEIGHT - 1
        self.rect(MARGIN, top, PAGE_WIDTH - 2 * MARGIN, LINE_HEIGHT, style="F")
        self.set_fill_color(0)
        self.set_font("courier", "B", FONT_SIZE)
        self.text(MARGIN, top + BASELINE, self.header_line)
        self.set_font("courier", "", FONT_SIZE)

    def footer(self) -> None:
        self.set_font("helvetica", "", 8)
        self.set_xy(MARGIN, PAGE_HEIGHT - MARGIN)
        self.cell(0, 4, f"Page {self.page_no()} of {{pagecount}}", align="C")
        self.set_font("courier", "", FONT_SIZE)


class PdfWriter(TableWriter):
    extension = "pdf"
    content_type = "application/pdf"
    max_rows = 100_000

    def __init__(self, sink: BinarySink, document: Document) -> None:
        super().__init__(sink, document)
        self._pdf = _Report(document)
        self._widths: list[int] = []
        self._right: list[bool] = []
        self._y = BODY_BOTTOM  # the first row opens the first page

    def _write(self, table: pl.DataFrame) -> None:
        if not self._widths:
            self._set_columns(column_chars(table, self.document.labels), table.dtypes)
        pdf, y, row = self._pdf, self._y, self.rows
        for line in self._lines(table):
            if y + LINE_HEIGHT > BODY_BOTTOM:
                pdf.add_page()
                y = BODY_TOP
            if row % 2:
                pdf.set_fill_color(ZEBRA_GREY)
                pdf.rect(MARGIN, y, PAGE_WIDTH - 2 * MARGIN, LINE_HEIGHT, style="F")
                pdf.set_fill_color(0)
            pdf.text(MARGIN, y + BASELINE, line)
            y += LINE_HEIGHT
            row += 1
        self._y = y

    def _set_columns(self, widths: list[int], dtypes: list[pl.DataType]) -> None:
        """Fixes the columns' widths and alignment (numbers to the right) and the header line."""
        self._widths = widths
        self._right = [dtype.is_numeric() for dtype in dtypes]
        labels = pl.DataFrame(
            [pl.Series(str(index), [label]) for index, label in enumerate(self.document.labels)]
        )
        self._pdf.header_line = str(self._lines(labels)[0])

    def _lines(self, table: pl.DataFrame) -> pl.Series:
        cells = [
            fixed_width(pl.col(name).cast(pl.String).fill_null(""), width, right)
            for name, width, right in zip(table.columns, self._widths, self._right, strict=True)
        ]
        return table.select(pl.concat_str(cells, separator=SEPARATOR)).to_series()

    def _finish(self) -> None:
        pdf = self._pdf
        if pdf.page == 0:
            labels = self.document.labels
            self._set_columns(
                [max(MIN_COLUMN_CHARS, len(label)) for label in labels], [pl.String()] * len(labels)
            )
            pdf.add_page()
            pdf.set_font("helvetica", "I", 9)
            pdf.text(MARGIN, BODY_TOP + BASELINE, "No rows in this window.")
        self._sink.write(bytes(pdf.output()))
