"""Contact sources: reading, typing and normalising records; segments."""
