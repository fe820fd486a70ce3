"""tikting/urls.py groups the API's routes by their first segment (by_first_segment): every route
must resolve exactly as in django-ninja's flat list, to the same view with the same arguments."""

import re

from django.urls import URLResolver, resolve
from django.urls.resolvers import RoutePattern

from tikting import urls


def _example(route: str) -> str:
    """A path the route matches: each <parameter> filled with 7 (a valid id and slug alike)."""
    return re.sub(r"<[^>]+>", "7", route)


def test_every_api_route_resolves_as_in_the_flat_list():
    flat = URLResolver(RoutePattern("api/"), urls.api_patterns)
    grouped = urls.by_first_segment(urls.api_patterns)
    assert len(grouped) < len(urls.api_patterns) / 3  # grouped: a dozen entries, not 120
    checked = 0
    for pattern in urls.api_patterns:
        path = "/api/" + _example(str(pattern.pattern))
        expected = flat.resolve(path.lstrip("/"))
        got = resolve(path)
        assert got.func == expected.func, path
        assert got.kwargs == expected.kwargs, path
        assert got.route == "api/" + str(pattern.pattern), path
        checked += 1
    assert checked == len(urls.api_patterns)


def test_grouping_is_refused_when_a_first_segment_is_a_parameter():
    from django.urls import path

    def view(request):  # pragma: no cover - never called
        return None

    patterns = [path("<slug>/x", view), path("records/x", view)]
    assert urls.by_first_segment(patterns) is patterns
