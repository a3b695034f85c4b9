"""Building blocks of the apps' windows: cell text for numbers and a read-only table filled from rows."""

from __future__ import annotations

import math
from typing import Any

from vnpy.trader.ui import QtCore, QtWidgets


# -- cell text --------------------------------------------------------------------------------------
def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def money(value: Any, spec: str = ",.2f") -> str:
    return "-" if _missing(value) else format(value, spec)


def qty(value: Any) -> str:
    return money(value, ",.0f" if _missing(value) or float(value).is_integer() else ",.2f")


# -- tables -----------------------------------------------------------------------------------------
class DataTable(QtWidgets.QTableWidget):
    """A read-only table filled row by row from plain values."""

    headers: tuple[str, ...] = ()
    fit: tuple[int, ...] = ()  # columns sized to their contents (the others share the rest)

    def __init__(self) -> None:
        super().__init__()
        self.setColumnCount(len(self.headers))
        self.setHorizontalHeaderLabels(list(self.headers))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        for c in self.fit:
            header.setSectionResizeMode(c, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)

    def set_rows(self, rows: list[list[str]]) -> None:
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = QtWidgets.QTableWidgetItem(text)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                self.setItem(r, c, item)
