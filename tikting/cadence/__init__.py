"""Cadence: improvement sprints with their board, time logs, reviews and velocity."""
