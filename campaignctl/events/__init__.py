"""Events: what happened to messages and records, from every producer."""
