"""Boards: many leaderboards per deployment, each with its own operator, order and seasons."""
