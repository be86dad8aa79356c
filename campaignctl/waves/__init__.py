"""When each wave of a campaign is due, and what the store already knows of it.

Schedule arithmetic over `spec` (first send, recurrences, relaunches), the misfire policy,
and the store's record of wave keys. Both `plan` (its "when" section) and `schedule` (the
scheduler's pass, `calendar`) read them, so they sit below both: above `spec` and `store`
only.
"""
