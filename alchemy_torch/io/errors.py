"""The one exception every reader raises for bad input."""

from __future__ import annotations


class DataFormatError(ValueError):
    """Bad input: names the file, the line (1-based; for Parquet the row) and the field.

    ``line`` is None for whole-file problems (unknown format, unreadable header) and
    ``field`` is None when no single field is at fault (e.g. invalid JSON).
    """

    def __init__(self, path, line: int | None, field: str | None, message: str, unit: str = "line"):
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}, {unit} {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")
