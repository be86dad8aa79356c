"""Report renderers: tables (terminal and CSV share them), and a self-contained HTML page.

The HTML page needs no network and no JavaScript: styles are inline, charts are
inline SVG, and it prints cleanly.
"""

from __future__ import annotations

import html
import io
import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from campaignctl.clock import local_text
from campaignctl.errors import writing
from campaignctl.report.model import CampaignList, CampaignReport, Figures, Rate
from campaignctl.safecsv import FormulaSafeWriter

WAVE_KIND_LABEL = {"initial": "", "relaunch": " (relance)", "recurrence": " (récurrence)"}


@dataclass(frozen=True)
class ReportTable:
    name: str  # file stem for CSV: campaigns, waves, matrix, answers, reasons, not_contacted…
    title: str
    headers: list[str]
    rows: list[list[str | int | float | None]]
    wraps: frozenset[int] = frozenset()  # columns of lists: on a terminal, one item a line


# ----------------------------------------------------------------------------- tables


def _local(value: datetime | None, tz: str) -> str:
    return local_text(value, tz, short=True) if value else ""


def _status(status: str, held: int, until: datetime | None, tz: str) -> str:
    """A wave's state, with the SMS held by quiet hours and until when."""
    if not held:
        return status
    return f"{status}: {held} SMS until {_local(until, tz)}"


def _pct(rate: Rate) -> str:
    return "—" if rate.value is None else f"{rate.value:.1%}"


FIGURE_COLUMNS = [
    ("queued", "queued"),
    ("uncertain", "uncertain"),
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("failed", "failed"),
    ("bounced_hard", "bounced hard"),
    ("bounced_soft", "bounced soft"),
    ("suppressed", "suppressed"),
    ("skipped", "skipped"),
    ("opened", "opened"),
    ("clicked", "clicked"),
    ("form_opened", "form opened"),
    ("answered", "answered"),
    ("unsubscribed", "unsubscribed"),
    ("complained", "complained"),
    ("sms_parts", "SMS parts"),
    ("records_contacted", "records contacted"),  # the denominator of the response rate
]


def _figure_cells(figures: Figures) -> list[str | int | float | None]:
    return [
        *(getattr(figures, attr) for attr, _ in FIGURE_COLUMNS),
        _pct(figures.open_rate),
        _pct(figures.response_rate),
    ]


FIGURE_HEADERS = [label for _, label in FIGURE_COLUMNS] + ["open rate", "response rate"]


def report_tables(report: CampaignReport | CampaignList) -> list[ReportTable]:
    """The tables of a report, in display order; the same for the terminal and for CSV."""
    if isinstance(report, CampaignList):
        rows = [
            [
                r.name,
                r.type,
                r.category,
                _status(r.status, r.held, r.held_until, report.timezone),
                r.records,
                r.messages,
                r.uncertain,
                _pct(r.response_rate),
                _pct(r.form_open_rate),
                _pct(r.email_open_rate),
                r.responses_to_process,
                ", ".join(
                    f"{_local(at, report.timezone)}{WAVE_KIND_LABEL.get(kind, '')}"
                    for at, kind in r.waves
                ),
            ]
            for r in report.rows
        ]
        headers = [
            "campaign",
            "type",
            "category",
            "status",
            "records",
            "messages",
            "uncertain",
            "response rate",
            "form opened, no answer",
            "email open rate",
            "to process",
            "waves",
        ]
        return [ReportTable("campaigns", "Campaigns", headers, rows, frozenset({len(headers) - 1}))]
    tz = report.timezone
    waves = [
        [
            w.number,
            w.kind,
            _status(w.status, w.held, w.held_until, tz),
            _local(w.started_at or w.scheduled_for, tz),
            *_figure_cells(w.figures),
        ]
        for w in report.waves
    ]
    if report.waves:
        waves.append(["total", "", "", "", *_figure_cells(report.totals)])
    tables = [
        ReportTable(
            "waves",
            f"{report.name}: waves",
            ["wave", "kind", "status", "when", *FIGURE_HEADERS],
            waves,
        ),
        ReportTable(
            "matrix",
            f"{report.name}: segment × channel",
            ["segment", "channel", *FIGURE_HEADERS],
            [[c.segment, c.channel, *_figure_cells(c.figures)] for c in report.matrix],
        ),
        ReportTable(
            "answers",
            f"{report.name}: answers per day",
            ["day", "answers", "cumulative"],
            [[d.day.isoformat(), d.answers, d.cumulative] for d in report.answers_per_day],
        ),
    ]
    reasons = [
        [w.number, reason, n] for w in report.waves for reason, n in w.skipped_reasons.items()
    ]
    if reasons:
        tables.append(
            ReportTable(
                "reasons",
                f"{report.name}: suppressed and skipped messages",
                ["wave", "reason", "messages"],
                reasons,
            )
        )
    if report.not_contacted:
        tables.append(
            ReportTable(
                "not_contacted",
                f"{report.name}: records not contacted (as locked)",
                ["reason", "other campaign", "records"],
                [[n.reason, n.detail or "", n.records] for n in report.not_contacted],
            )
        )
    if report.steps:
        tables.append(
            ReportTable(
                "steps",
                f"{report.name}: automation steps",
                [
                    "step",
                    "",
                    "affected",
                    "processed",
                    "waiting",
                    "sent",
                    "no address",
                    "not sent",
                    "opened",
                    "clicked",
                ],
                [
                    [
                        s.step,
                        s.label,
                        s.affected,
                        s.processed,
                        s.waiting,
                        s.sent,
                        s.no_address,
                        s.not_sent,
                        s.opened,
                        s.clicked,
                    ]
                    for s in report.steps
                ],
            )
        )
    return tables


LABEL_COLUMNS = {"waves": 4, "matrix": 2}


def for_terminal(table: ReportTable) -> ReportTable:
    """Wide figure tables turned a quarter: one row per figure, one column per wave or cell.

    Seventeen figures side by side do not fit a terminal; seventeen lines do.
    """
    width = LABEL_COLUMNS.get(table.name)
    if width is None:
        return table
    labels = [" ".join(str(c) for c in row[:width] if c not in ("", None)) for row in table.rows]
    rows = [
        [header, *(row[i] for row in table.rows)]
        for i, header in enumerate(table.headers)
        if i >= width
    ]
    label = " / ".join(table.headers[:width])
    return ReportTable(table.name, table.title, [label, *labels], rows)


# A boxed table spends 3 characters per column (a rule and a space each side) and 1 more.
COLUMN_OVERHEAD = 3


@dataclass(frozen=True)
class FittedTable:
    """A table cut to a terminal's width: its columns and the width of each."""

    table: ReportTable
    widths: list[int]


def _header_lines(header: str, width: int) -> int:
    return len(textwrap.wrap(header, width, break_long_words=False)) or 1


def _widen(
    table: ReportTable, columns: list[int], least: list[int], most: list[int], spare: int
) -> dict[int, int]:
    """Share the spare width among the headers that wrap onto the most lines, each step the
    narrowest widening that saves one of their lines."""
    widths = {i: least[i] for i in columns}
    candidates = [i for i in columns if _header_lines(table.headers[i], widths[i]) > 1]
    while candidates:
        i = max(candidates, key=lambda i: _header_lines(table.headers[i], widths[i]))
        lines = _header_lines(table.headers[i], widths[i])
        wider = next(
            w
            for w in range(widths[i] + 1, most[i] + 1)
            if _header_lines(table.headers[i], w) < lines
        )
        if wider - widths[i] > spare:
            candidates.remove(i)
            continue
        spare -= wider - widths[i]
        widths[i] = wider
        if _header_lines(table.headers[i], wider) == 1:
            candidates.remove(i)
    return widths


def fit_table(table: ReportTable, width: int) -> list[FittedTable]:
    """The table as one or more tables no wider than `width`, each column as wide as it may be.

    Columns keep their full width when they can; headers wrap between words, never inside
    one; when even the narrowest columns do not fit, the columns are stacked in several
    tables that each repeat the first column (the campaign, or the figure's name).
    """
    # a list (of waves) shows one item a line; a name or a figure is never cut
    cells = [["" if c is None else str(c) for c in row] for row in table.rows]
    for row in cells:
        for i in table.wraps:
            row[i] = row[i].replace(", ", ",\n")
    least, most = [], []
    for i, header in enumerate(table.headers):
        widest = max([len(line) for row in cells for line in row[i].split("\n")] + [1])
        least.append(max([len(w) for w in header.split()] + [widest]))
        most.append(max(len(header), widest))
    room = width - 1
    groups: list[list[int]] = []
    for i in range(1, len(table.headers)):
        if groups and sum(least[j] + COLUMN_OVERHEAD for j in [0, *groups[-1], i]) <= room:
            groups[-1].append(i)
        else:
            groups.append([i])
    fitted = []
    for n, group in enumerate(groups or [[]]):
        columns = [0, *group]
        spare = room - sum(least[i] + COLUMN_OVERHEAD for i in columns)
        widths = _widen(table, columns, least, most, spare)
        title = table.title if n == 0 else f"{table.title} (continued)"
        headers = [table.headers[i] for i in columns]
        part = ReportTable(table.name, title, headers, [[row[i] for i in columns] for row in cells])
        fitted.append(FittedTable(part, [widths[i] for i in columns]))
    return fitted


def empty_state(report: CampaignReport | CampaignList) -> str | None:
    """The sentence to show instead of empty tables."""
    if isinstance(report, CampaignList):
        if report.rows:
            return None
        if report.filtered:
            return "No campaign matches these filters."
        return "No campaign has been applied to the store yet."
    return None if report.waves else f"No wave of {report.name} has been sent yet."


def summary_line(report: CampaignReport) -> str:
    """One sentence with the campaign's totals and the denominators of its rates."""
    t = report.totals
    return (
        f"{report.name} ({report.type}, {report.category}): {report.status}; "
        f"{report.records} records, {report.messages} messages; "
        f"answers: {t.response_rate.describe()}; opens: {t.open_rate.describe()}; "
        f"form opened without answering: {t.form_open_rate.describe()}; "
        f"responses to process: {report.responses_to_process}"
    )


def text_page(report: CampaignReport | CampaignList, organization: str) -> str:
    """The report as plain text with aligned columns (the text part of the report email)."""
    title = "Campaigns" if isinstance(report, CampaignList) else f"Campaign {report.name}"
    lines = [f"{title} — {organization}"]
    if report.generated_at:
        lines.append(local_text(report.generated_at, report.timezone))
    if isinstance(report, CampaignReport):
        lines.append(summary_line(report))
    empty = empty_state(report)
    if empty:
        return "\n".join([*lines, "", empty]) + "\n"
    for table in report_tables(report):
        cells = [table.headers] + [["" if c is None else str(c) for c in r] for r in table.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(table.headers))]
        lines += ["", table.title]
        for n, row in enumerate(cells):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- CSV


def table_csv(table: ReportTable) -> str:
    buffer = io.StringIO()
    writer = FormulaSafeWriter(buffer, lineterminator="\r\n")
    writer.writerow(table.headers)
    for row in table.rows:
        writer.writerow(row)
    return buffer.getvalue()


def write_csv(report: CampaignReport | CampaignList, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for table in report_tables(report):
        path = out_dir / f"{table.name}.csv"
        with writing(path):
            path.write_text(table_csv(table), encoding="utf-8")
        written.append(path)
    return written


# ----------------------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;
  margin:2rem;color:#1d2433}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:2rem 0 .5rem}
.meta{color:#5b6475;margin:0 0 1rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #d5dae3;padding:.25rem .5rem;text-align:right}
th{background:#f2f4f8}td:first-child,th:first-child{text-align:left}
.empty{padding:1rem;background:#f7f7f9;border:1px dashed #c8ccd4}
svg text{font-size:11px;fill:#1d2433}
@media print{body{margin:0}h2{break-after:avoid}table,svg{break-inside:avoid}}
"""
_FUNNEL = [
    ("sent", "#4c6ef5"),
    ("delivered", "#15aabf"),
    ("opened", "#40c057"),
    ("clicked", "#fab005"),
    ("answered", "#e8590c"),
]


def _funnel_svg(report: CampaignReport) -> str:
    bar_h, gap, label_w, width = 14, 4, 110, 560
    waves = report.waves
    peak = max([max(getattr(w.figures, k) for k, _ in _FUNNEL) for w in waves] + [1])
    group_h = len(_FUNNEL) * (bar_h + gap) + 18
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + label_w + 60}" '
        f'height="{group_h * len(waves)}" role="img" aria-label="Funnel per wave">'
    ]
    for i, wave in enumerate(waves):
        top = i * group_h
        parts.append(
            f'<text x="0" y="{top + 12}" font-weight="bold">Wave {wave.number} '
            f"({html.escape(wave.kind)})</text>"
        )
        for j, (key, colour) in enumerate(_FUNNEL):
            value = getattr(wave.figures, key)
            y = top + 18 + j * (bar_h + gap)
            w = round(width * value / peak)
            parts.append(
                f'<text x="8" y="{y + 11}">{key}</text>'
                f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{colour}"/>'
                f'<text x="{label_w + w + 4}" y="{y + 11}">{value}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _answers_svg(report: CampaignReport) -> str:
    days = report.answers_per_day
    width, height, pad = 600, 180, 30
    peak = max([d.cumulative for d in days] + [1])
    span = max(len(days) - 1, 1)
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    points = " ".join(
        f"{pad + inner_w * i / span:.1f},{height - pad - inner_h * d.cumulative / peak:.1f}"
        for i, d in enumerate(days)
    )
    first, last = days[0].day.isoformat(), days[-1].day.isoformat()
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="Cumulative answers per day">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#8a93a6"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#8a93a6"/>'
        f'<polyline points="{points}" fill="none" stroke="#e8590c" stroke-width="2"/>'
        f'<text x="{pad}" y="{height - 8}">{first}</text>'
        f'<text x="{width - pad - 70}" y="{height - 8}">{last}</text>'
        f'<text x="4" y="{pad - 8}">{peak}</text></svg>'
    )


def _html_table(table: ReportTable) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str('' if c is None else c))}</td>" for c in row)
        + "</tr>"
        for row in table.rows
    )
    return (
        f"<h2>{html.escape(table.title)}</h2>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def html_page(report: CampaignReport | CampaignList, organization: str) -> str:
    """One self-contained page: inline styles and SVG charts, readable without JavaScript."""
    title = "Campaigns" if isinstance(report, CampaignList) else f"Campaign {report.name}"
    stamp = local_text(report.generated_at, report.timezone) if report.generated_at else ""
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(organization)}{" — " + stamp if stamp else ""}</p>',
    ]
    empty = empty_state(report)
    if empty:
        sections.append(f'<p class="empty">{html.escape(empty)}</p>')
    else:
        if isinstance(report, CampaignReport):
            sections.append(f'<p class="meta">{html.escape(summary_line(report))}</p>')
            sections.append("<h2>Funnel per wave</h2>" + _funnel_svg(report))
            if report.answers_per_day:
                sections.append("<h2>Answers over time (cumulative)</h2>" + _answers_svg(report))
        sections.extend(_html_table(t) for t in report_tables(report))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )
