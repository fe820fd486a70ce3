"""The item page's "bind to a metric" form (/register/<id>/indicators/<id>/bind/)."""

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.core.models import AuditEntry
from tikting.improvement import services as S
from tikting.improvement.forms_bind import SCOPE_FIELDS, BindIndicatorForm, default_window
from tikting.improvement.models import Indicator
from tikting.metrics.definitions import DEFINITIONS
from tikting.metrics.engine import FILTER_FIELDS, compute
from tikting.test import noon, ready_item, resolved_incident

pytestmark = pytest.mark.django_db
HTMX: dict[str, Any] = {"HTTP_HX_REQUEST": "true"}


def bind_url(item, indicator):
    return reverse("improvement:indicator_bind", args=[item.pk, indicator.pk])


def bind_data(indicator, **values):
    start, end = default_window()
    data = {
        "metric_key": "mttr",
        "service": "",
        "priority": "",
        "group": "",
        "category": "",
        "ci": "",
        "source": "",
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "version": str(indicator.version),
    }
    data.update(values)
    return {f"bind{indicator.pk}-{k}": v for k, v in data.items()}


@pytest.fixture
def records(cast):
    """Resolved e-mail incidents in the default window, and some out of the scope used below."""
    today = timezone.localdate()
    desk = Team.objects.create(name="Service desk")
    for n, hours in enumerate([3, 5, 10]):
        resolved_incident(
            f"INC-E{n}", cast.email, noon(today - dt.timedelta(days=20 + n)), hours, assignment_group=desk
        )
    resolved_incident(
        "INC-P4", cast.email, noon(today - dt.timedelta(days=30)), 50, priority=4, assignment_group=desk
    )
    resolved_incident("INC-NET", cast.network, noon(today - dt.timedelta(days=30)), 70, assignment_group=desk)
    resolved_incident("INC-OLD", cast.email, noon(today - dt.timedelta(days=200)), 90, assignment_group=desk)
    return desk


def test_scope_fields_are_filters_the_metrics_engine_accepts():
    assert set(SCOPE_FIELDS) <= set(FILTER_FIELDS) - {"opened_from", "opened_to", "status"}


def test_editor_gets_the_form_prefilled_from_the_items_service(cast, login, records):
    item = ready_item(cast)
    indicator = item.indicators.get()
    response = login(cast.owner).get(bind_url(item, indicator), **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    form = response.context["form"]
    start, end = default_window()
    assert form.initial["service"] == "E-mail"  # the item's service
    assert (form.initial["window_start"], form.initial["window_end"]) == (start, end)
    assert (end - start).days == 89 and end == timezone.localdate() - dt.timedelta(days=1)
    # Every metric is offered, with its unit; services, teams and sources come from the records.
    for definition in DEFINITIONS.values():
        assert f'value="{definition.key}"' in html
    assert "MTTR (mean time to resolve) — hours" in html
    assert '<option value="E-mail" selected>E-mail</option>' in html
    assert '<option value="Service desk">Service desk</option>' in html
    assert '<option value="manual">manual</option>' in html
    assert f'name="bind{indicator.pk}-version" value="{indicator.version}"' in html
    assert "<html" not in html  # htmx gets the form alone


def test_the_page_offers_bind_to_editors_only(cast, login):
    item = ready_item(cast)
    indicator = item.indicators.get()
    assert bind_url(item, indicator) in login(cast.owner).get(item.get_absolute_url()).content.decode()
    assert bind_url(item, indicator) not in login(cast.viewer).get(item.get_absolute_url()).content.decode()


def test_a_plain_get_shows_the_page_with_the_form_open(cast, login):
    item = ready_item(cast)
    indicator = item.indicators.get()
    response = login(cast.owner).get(bind_url(item, indicator))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html and "data-bind-panel" in html and f'name="bind{indicator.pk}-metric_key"' in html


def test_post_binds_and_computes_the_baseline_from_the_records(cast, login, records):
    item = ready_item(cast)
    indicator = item.indicators.get()
    start, end = default_window()
    response = login(cast.owner).post(
        bind_url(item, indicator), bind_data(indicator, service="E-mail", priority="2", group="Service desk")
    )
    assert response.status_code == 302
    indicator.refresh_from_db()
    scope = {"service": "E-mail", "priority": "2", "group": "Service desk"}
    expected = compute(
        "mttr", filters={**scope, "opened_from": start.isoformat(), "opened_to": end.isoformat()}
    ).total
    assert expected.count == 3 and expected.value == pytest.approx(6.0)  # 3, 5 and 10 hours
    assert expected.value is not None
    assert indicator.baseline_value == Decimal(str(round(expected.value, 4)))
    assert indicator.metric_key == "mttr"
    assert indicator.metric_scope == scope
    assert indicator.baseline_date == end
    assert "3 records" in indicator.baseline_method
    # The page now shows the binding, read-only, and offers a re-bind.
    html = login(cast.owner).get(item.get_absolute_url()).content.decode()
    assert 'data-binding="mttr"' in html and "MTTR (mean time to resolve)" in html
    assert "service <strong>E-mail</strong>" in html and "priority <strong>2 - High</strong>" in html
    assert indicator.baseline_method in html
    assert "Re-bind" in html


def test_htmx_post_returns_the_page_body_with_the_message(cast, login, records):
    item = ready_item(cast)
    indicator = item.indicators.get()
    response = login(cast.owner).post(
        bind_url(item, indicator), bind_data(indicator, service="E-mail"), **HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="item-page"' in html and "<html" not in html
    assert "bound to MTTR (mean time to resolve): baseline" in html


def test_rebind_form_is_prefilled_from_the_binding(cast, login, records):
    item = ready_item(cast)
    # a second data set, so that "manual,demo" names two sources the records carry
    resolved_incident(
        "INC-DEMO", cast.network, noon(timezone.localdate() - dt.timedelta(days=5)), 1, source="demo"
    )
    indicator = S.bind_indicator(
        item.indicators.get(),
        actor=cast.owner,
        metric_key="mttr_median",
        scope={"service": str(cast.network.pk), "group": "Service desk", "source": "manual,demo"},
        window_start=timezone.localdate() - dt.timedelta(days=60),
        window_end=timezone.localdate(),
    )
    response = login(cast.owner).get(bind_url(item, indicator), **HTMX)
    form = response.context["form"]
    assert form.initial["metric_key"] == "mttr_median"
    assert form.initial["service"] == "Network"  # an id saved through the API shown as its option
    assert form.initial["group"] == "Service desk"
    html = response.content.decode()
    assert '<option value="mttr_median" selected>' in html
    assert '<option value="Network" selected>Network</option>' in html
    # A list of sources no option matches is kept as an option of its own, not dropped.
    assert '<option value="manual,demo" selected>manual,demo</option>' in html


def test_empty_window_is_an_error_on_window_start_and_changes_nothing(cast, login, records):
    item = ready_item(cast)
    indicator = item.indicators.get()
    before = Indicator.objects.filter(pk=indicator.pk).values().get()
    audit = AuditEntry.objects.count()
    empty = timezone.localdate() - dt.timedelta(days=400)
    data = bind_data(
        indicator,
        service="E-mail",
        category="Mail",
        window_start=empty.isoformat(),
        window_end=(empty + dt.timedelta(days=10)).isoformat(),
    )
    # No incident has category "Mail" at all: the engine says so on the category field, not an
    # empty window (a misspelt value is not "no records").
    response = login(cast.owner).post(bind_url(item, indicator), data)
    match = re.search(r'data-field="(\w+)">([^<]*)<', response.content.decode())
    assert response.status_code == 422 and match and match.group(1) == "category"
    assert "No record has category" in match.group(2)
    resolved_incident(
        "INC-MAIL", cast.email, noon(timezone.localdate() - dt.timedelta(days=3)), 2, category="Mail"
    )
    for headers in ({}, HTMX):
        response = login(cast.owner).post(bind_url(item, indicator), data, **headers)
        assert response.status_code == 422
        html = response.content.decode()
        match = re.search(r'data-field="(\w+)">([^<]*)<', html)
        assert match and match.group(1) == "window_start" and "No records in scope" in match.group(2)
        # Nothing typed is lost: the form comes back open with the input.
        assert f'value="{empty.isoformat()}"' in html and 'value="Mail"' in html
        assert '<option value="E-mail" selected>' in html
    assert Indicator.objects.filter(pk=indicator.pk).values().get() == before
    assert AuditEntry.objects.count() == audit


def test_a_scope_the_metric_cannot_use_is_shown_on_its_field(cast, login, records):
    item = ready_item(cast)
    indicator = item.indicators.get()
    response = login(cast.owner).post(
        bind_url(item, indicator), bind_data(indicator, metric_key="change_success_rate", priority="2")
    )
    assert response.status_code == 422
    assert 'data-field="priority"' in response.content.decode()
    indicator.refresh_from_db()
    assert indicator.metric_key == ""


def test_missing_fields_are_refused_by_the_form(cast, login):
    item = ready_item(cast)
    indicator = item.indicators.get()
    response = login(cast.owner).post(
        bind_url(item, indicator), bind_data(indicator, metric_key="", window_start="")
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-field="metric_key"' in html and 'data-field="window_start"' in html


def test_viewer_gets_403(cast, login, records):
    item = ready_item(cast)
    indicator = item.indicators.get()
    client = login(cast.viewer)
    assert client.get(bind_url(item, indicator)).status_code == 403
    assert client.get(bind_url(item, indicator), **HTMX).status_code == 403
    assert client.post(bind_url(item, indicator), bind_data(indicator, service="E-mail")).status_code == 403
    # An owner of another item may not bind this one either (the service's permission).
    other = login(cast.other_owner)
    assert other.post(bind_url(item, indicator), bind_data(indicator, service="E-mail")).status_code == 403
    indicator.refresh_from_db()
    assert indicator.metric_key == ""


def test_stale_version_is_a_conflict_not_an_overwrite(cast, login, records):
    item = ready_item(cast)
    indicator = item.indicators.get()
    read_version = indicator.version
    S.update_indicator(indicator, actor=cast.manager, expected_version=read_version, target_value="5")
    client = login(cast.owner)
    for headers in ({}, HTMX):
        response = client.post(
            bind_url(item, indicator),
            bind_data(indicator, service="E-mail", version=str(read_version)),
            **headers,
        )
        assert response.status_code == 409
        html = response.content.decode()
        assert "data-conflict" in html and "data-bind-conflict" in html
        assert '<option value="E-mail" selected>' in html  # the input is kept
        # ... with the version now current, so binding again is a deliberate second click.
        assert f'name="bind{indicator.pk}-version" value="{read_version + 1}"' in html
    indicator.refresh_from_db()
    assert indicator.metric_key == "" and indicator.baseline_value == Decimal("10")


def test_the_form_insists_on_the_version(cast, login, records):
    item = ready_item(cast)
    indicator = item.indicators.get()
    response = login(cast.owner).post(bind_url(item, indicator), bind_data(indicator, version=""))
    assert response.status_code == 422
    indicator.refresh_from_db()
    assert indicator.metric_key == ""


def test_posts_need_the_csrf_token(cast, records):
    item = ready_item(cast)
    indicator = item.indicators.get()
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.owner)
    data = bind_data(indicator, service="E-mail")
    assert client.post(bind_url(item, indicator), data).status_code == 403
    indicator.refresh_from_db()
    assert indicator.metric_key == ""
    # The token the form carries is what makes the same post go through.
    html = client.get(bind_url(item, indicator), **HTMX).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match is not None
    token = match.group(1)
    assert client.post(bind_url(item, indicator), {**data, "csrfmiddlewaretoken": token}).status_code == 302
    indicator.refresh_from_db()
    assert indicator.metric_key == "mttr"


def test_form_choices_follow_the_definitions_and_records(cast, records):
    form = BindIndicatorForm()
    metric_keys = {key for _group, options in form.choices_of("metric_key")[1:] for key, _ in options}
    assert metric_keys == set(DEFINITIONS)
    resolved_incident("INC-IMP", cast.email, timezone.now(), 1, source="servicenow-uci")
    assert ("servicenow-uci", "servicenow-uci") in BindIndicatorForm().choices_of("source")


def test_a_service_whose_name_reads_as_empty_or_an_id_is_sent_by_id(db):
    from tikting.cmdb.models import Service
    from tikting.improvement.forms_bind import scope_value

    for name in ("None", "(none)", "42", "Mail, Chat"):
        service = Service.objects.create(name=name)
        assert scope_value(service) == str(service.pk)
    assert scope_value(Service.objects.create(name="E-mail 2")) == "E-mail 2"
