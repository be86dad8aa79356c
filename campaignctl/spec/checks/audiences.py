"""Checks of each audience: its source file, read for its header."""

from __future__ import annotations

import typing
from pathlib import Path

from campaignctl.errors import Severity
from campaignctl.spec.checks.base import CheckerBase
from campaignctl.spec.files import (
    AUDIENCES_DIR,
)
from campaignctl.spec.loaded import (
    SOURCE_PROBLEM,
    LoadedDocument,
)
from campaignctl.spec.loader import Mark
from campaignctl.spec.models import (
    Audience,
    ColumnType,
)
from campaignctl.spec.sources import SourceError, read_header, source_columns


class AudienceChecks(CheckerBase):
    """Checks of each audience: its source file, read for its header."""

    def _check_audience(self, doc: LoadedDocument) -> None:
        audience = typing.cast(Audience, doc.model)
        mark = doc.mark("source")
        path = self._confined(doc.file, mark, audience.source, AUDIENCES_DIR, "source")
        if path is not None and not path.is_file():
            self._report(
                doc.file,
                mark,
                "missing-file",
                f"source file {audience.source!r} not found",
                "`audience import` needs it, and without it the attributes that templates, "
                "segments and questionnaires use cannot be checked; paths are relative to "
                "the workspace root",
                Severity.WARNING,
            )
        elif path is not None:  # an unsafe path is reported, and never read
            self._check_audience_source(doc, audience, path)
        for name, column in audience.columns.items():
            if column.region is not None and column.type != ColumnType.PHONE:
                self._report(
                    doc.file,
                    doc.mark("columns", name, "region"),
                    "invalid-value",
                    f"columns.{name}.region applies to phone columns only",
                    "remove it or set `type: phone`",
                    Severity.WARNING,
                )

    def _check_audience_source(self, doc: LoadedDocument, audience: Audience, path: Path) -> None:
        """Read the CSV's header (and first 64 KiB) at `path` (confined to audiences/) as the
        import will: a file it could not read is an error here, and the header tells which
        attributes the records have."""
        try:
            head = read_header(path, audience, audience.source)
        except SourceError as exc:
            self._report(exc.file, Mark(exc.line or 1, 1), SOURCE_PROBLEM, exc.what, exc.hint)
            return
        mapped = source_columns(audience, head.header)
        for name in mapped.missing:
            message, hint = mapped.missing_column(audience, name, head.header)
            path = ("columns", name) if name in audience.columns else ("key",)
            self._report(doc.file, doc.source_map.locate(path, key=True), SOURCE_PROBLEM,
                         f"{message} of {audience.source}", hint)  # fmt: skip
        for header, why in mapped.unkept:
            self._report(
                audience.source, Mark(1, 1), SOURCE_PROBLEM,
                f"column {header!r} gives no attribute: {why}",
                f"declare it under `columns:` in {doc.file} with a name of its own and "
                f"`header: {header!r}`",
                Severity.WARNING,
            )  # fmt: skip
        self.ws.sources[audience.name] = mapped
