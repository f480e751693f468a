"""Notification rules: which messages go out for an outcome, and what they say."""
