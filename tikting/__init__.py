"""tikting: an ITSM platform built around an ITIL 4 Continual Improvement Register."""

__version__ = "0.1.0"
