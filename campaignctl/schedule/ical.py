"""The calendar of scheduled waves as an iCalendar file that calendar apps import."""

from __future__ import annotations

from datetime import datetime, timedelta

from campaignctl.waves.timeline import PlannedWave


def calendar_ics(waves: list[PlannedWave], organization: str, stamp: datetime) -> bytes:
    """One VEVENT per wave, with a stable UID so re-importing updates instead of duplicating."""
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//campaignctl//calendar//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{organization} — campagnes")
    for wave in waves:
        event = Event()
        event.add("uid", f"{wave.key}@campaignctl")
        event.add("dtstamp", stamp)
        event.add("dtstart", wave.at)
        event.add("duration", _fifteen_minutes())
        event.add("summary", f"{wave.campaign}: {wave.label()}")
        lines = [f"Channels: {', '.join(wave.channels) or 'none'}"]
        if wave.note:
            lines.append(wave.note)
        event.add("description", "\n".join(lines))
        event.add("categories", [str(wave.kind)])
        calendar.add_component(event)
    return calendar.to_ical()


def _fifteen_minutes():
    return timedelta(minutes=15)
