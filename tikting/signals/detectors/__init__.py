"""Detectors: one module per source of signals (the contract: tikting/signals/proposals.py)."""
