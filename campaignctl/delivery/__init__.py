"""Delivery: the outbox, the transports (file, smtp, http SMS), rate limits and the send engine.

Nothing outside this package knows which transport it talks to: the engine asks
`transport.create_transport(...)` for one by name and hands it built messages.
"""
