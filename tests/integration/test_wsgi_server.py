"""The production WSGI server (docs/deployment.md) parses requests with its C parser.

gunicorn picks gunicorn-h1c (requirements.txt) by itself when it can import it and falls back to
its Python parser quietly, so a build that failed or a pin that went away would only show as a
slower server: this says so instead."""

from gunicorn.config import Config
from gunicorn.http import message


def test_gunicorn_uses_its_c_parser():
    assert message._check_fast_parser(Config()) is True
