"""The figures of the scenario in conftest.py, derived by hand from what it writes."""

from __future__ import annotations

from campaignctl.report.model import Figures

WAVE_1 = Figures(
    queued=0,
    sent=22,  # 16 emails (one bounced later) + the grouped email + 5 SMS
    delivered=19,  # 14 + the grouped email + 4 SMS receipts
    failed=2,
    bounced_hard=2,  # record 14 (5.1.1) and the SMS the operator failed
    bounced_soft=1,
    suppressed=1,
    skipped=1,
    opened=10,
    clicked=6,
    form_opened=10,  # 0-7 by their email, 30 (answered) and 31 by SMS
    answered=7,  # 0-4, 7 (link of wave 1 used after the relaunch) and 30
    complained=1,
    sms_parts=6,
    records_contacted=23,  # 16 + two records behind the grouped email + 5
    email_delivered=15,  # the 19 delivered less the 4 SMS: opens are on these
    email_sent=17,  # 16 + the grouped email
)
WAVE_2 = Figures(
    sent=9,
    delivered=9,
    opened=3,
    form_opened=3,
    answered=2,
    records_contacted=9,
    email_delivered=9,
    email_sent=9,
)
WAVE_3 = Figures(queued=1, sent=1, sms_parts=1, records_contacted=1)
TOTALS = Figures(
    queued=1,
    sent=32,
    delivered=28,
    failed=2,
    bounced_hard=2,
    bounced_soft=1,
    suppressed=1,
    skipped=1,
    opened=13,
    clicked=6,
    form_opened=11,
    answered=9,
    complained=1,
    sms_parts=7,
    records_contacted=24,
    email_delivered=24,  # 15 + 9
    email_sent=26,
)
ACCOMMODATION_EMAIL = Figures(
    sent=26,
    delivered=24,
    failed=2,
    bounced_hard=1,
    bounced_soft=1,
    suppressed=1,
    skipped=1,
    opened=13,
    clicked=6,
    form_opened=9,
    answered=8,
    complained=1,
    records_contacted=18,
    email_delivered=24,
    email_sent=26,
)
RESTAURANTS_SMS = Figures(
    queued=1,
    sent=6,
    delivered=4,
    bounced_hard=1,
    form_opened=2,
    answered=1,
    sms_parts=7,
    records_contacted=6,
)
ANSWERS_PER_DAY = [  # Europe/Paris days from the first wave
    ("2027-03-01", 4, 4),
    ("2027-03-02", 1, 5),
    ("2027-03-03", 1, 6),  # 23:30 UTC on the 2nd
    ("2027-03-04", 0, 6),
    ("2027-03-05", 0, 6),
    ("2027-03-06", 0, 6),
    ("2027-03-07", 0, 6),
    ("2027-03-08", 2, 8),
    ("2027-03-09", 1, 9),  # record 5 answering again adds nothing
]
