"""Intake: who is asking, may they, is the update well-formed; then reserve and queue it."""
