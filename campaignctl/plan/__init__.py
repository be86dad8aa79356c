"""Plans, applies and locks: knowing what will happen before anything is sent."""
