"""CRM exports (DESIGN.md §6): badges per segment × channel cell, pushed to and withdrawn
from CSV drops and webhooks, resumable without a second idempotency key for any badge.

`export.transfer` (push_badges, withdraw_badges), `export.status` (export_status),
`export.cells` (which badge each cell carries), `export.systems` (CSV drop, webhook).
Nothing is imported here, so that a command loads only the modules it uses.
"""
