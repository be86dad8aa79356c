"""Automations (DESIGN.md §5): lists, triggers, step trees, and their figures.

`lists` keeps the members of `kind: List` documents; `engine` enrols records in
the campaigns that have a `trigger:` and moves them through their `steps:` on
every scheduler pass, set-based in SQL; `figures` counts what each step did.
"""
