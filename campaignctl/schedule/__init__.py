"""Waves in time: schedules, recurrences, relaunches, the scheduler."""
