"""Search across everything: register items, every ITSM record kind (incidents, problems, changes,
requests, knowledge articles, CIs …) and people, from one box in the header (docs/search.md)."""
