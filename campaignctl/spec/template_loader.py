"""The Jinja loader of a workspace: templates/ only, UTF-8 only.

Shared by `validate` (spec.templates, which parses) and the renderer (render.environment,
which renders), so that both read exactly the same files. Kept in its own module because
it imports jinja2, which commands that only need the definitions never load.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import jinja2

from campaignctl.errors import Diagnostic, Severity, SpecError
from campaignctl.spec.files import TEMPLATES_DIR, UnsafePath, confined_path


class TemplateFileError(SpecError):
    """A template file that cannot be used: it leads out of templates/ or is not UTF-8."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__([diagnostic], message=f"template {diagnostic.file} cannot be used")
        self.diagnostic = diagnostic


class WorkspaceLoader(jinja2.BaseLoader):
    """Loads every template name (a campaign's, `{% extends %}`, `{% include %}`,
    `{% import %}`) from the workspace's templates/ through `confined_path`.

    `FileSystemLoader` follows symbolic links wherever they lead (`followlinks` only
    concerns listing); here an absolute name, a `..` that climbs out, or a link (to the
    file or to a folder on the way) leading out of templates/ raises `TemplateFileError`
    (unsafe-path), and so does a file that is not UTF-8 (encoding, with its line).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        file = f"{TEMPLATES_DIR}/{template}"
        try:
            path = confined_path(
                self.root, template, TEMPLATES_DIR, base=TEMPLATES_DIR, what="template"
            )
        except UnsafePath as exc:
            raise TemplateFileError(exc.diagnostic(file, 1, 1)) from None
        try:
            data = path.read_bytes()
            mtime = os.stat(path).st_mtime_ns
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise jinja2.TemplateNotFound(template) from None

        def uptodate() -> bool:
            try:
                return os.stat(path).st_mtime_ns == mtime
            except OSError:
                return False

        return decode_template(data, file), str(path), uptodate


def decode_template(data: bytes, file: str) -> str:
    """The text of a template file; `TemplateFileError` (encoding) at the first byte that
    is not UTF-8, with its line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise TemplateFileError(
            Diagnostic(
                file,
                line,
                column,
                Severity.ERROR,
                "encoding",
                f"the file is not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason})",
                're-save the file as UTF-8 (the editor\'s "save with encoding", or '
                f"`iconv -f latin1 -t utf-8 {file} > {file}.new` then rename it)",
            )
        ) from None
