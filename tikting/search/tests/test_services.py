import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.cmdb.models import ConfigurationItem
from tikting.improvement import services as S
from tikting.incidents.models import Incident
from tikting.knowledge.models import Article
from tikting.search import services
from tikting.search.services import search

pytestmark = pytest.mark.django_db


def _incident(number, title, text="", days_ago=1):
    return Incident.objects.create(
        number=number,
        short_description=title,
        description=text,
        opened_at=timezone.now() - dt.timedelta(days=days_ago),
    )


def test_one_query_finds_items_records_articles_cis_and_people_ranked_together(cast):
    item = S.create_item(actor=cast.contributor, title="Stop VPN drops after patching", practice="incident")
    inc = _incident("INC0000001", "VPN drops every Monday", "Users lose the VPN at 09:00")
    Article.objects.create(number="KB0001", title="Reconnect the VPN client", body="Open the client")
    ConfigurationItem.objects.create(name="vpn-gw-01", ci_class="server")
    _incident("INC0000002", "Printer jam")

    found = search("vpn")

    kinds = [hit.source.key for hit in found.hits]
    assert set(kinds) == {"item", "incident", "article", "ci"}
    assert {c.key: c.count for c in found.counts} == {"item": 1, "incident": 1, "article": 1, "ci": 1}
    refs = {hit.candidate.ref for hit in found.hits}
    assert {item.ref, inc.number, "KB0001", "vpn-gw-01"} <= refs
    assert found.total == 4 and not found.capped
    assert all(hit.candidate.url for hit in found.hits)


def test_every_word_must_appear_somewhere_in_the_record(cast):
    _incident("INC0000001", "Printer offline", "floor 3")
    _incident("INC0000002", "Printer jam", "floor 2")
    assert [h.candidate.ref for h in search("printer floor 3").hits] == ["INC0000001"]
    assert search("printer basement").hits == []


def test_an_exact_reference_comes_first_whatever_the_kind(cast):
    target = _incident("INC0000077", "Disk full", days_ago=300)
    for n in range(5):
        _incident(f"INC00000{n}9", f"Mentions INC0000077 in the title {n}")
    item = S.create_item(actor=cast.contributor, title="Follow up INC0000077")
    hits = search("INC0000077").hits
    assert hits[0].candidate.ref == target.number
    assert item.ref in [h.candidate.ref for h in hits]


def test_an_item_is_found_by_its_reference_written_any_way(cast):
    item = S.create_item(actor=cast.contributor, title="Unrelated title")
    for written in (item.ref, item.ref.lower(), item.ref.replace("CI-", "ci-").replace("000", "")):
        assert search(written).hits[0].candidate.ref == item.ref, written


def test_people_are_found_by_name_and_user_name_and_link_to_their_items(cast):
    hits = search("olga").hits
    assert [(h.source.key, h.candidate.title) for h in hits] == [("person", "Olga Owner")]
    assert hits[0].candidate.url.endswith(f"?owner={cast.owner.pk}")
    assert search("Owner Olga").hits[0].candidate.ref == "olga"
    cast.owner.is_active = False
    cast.owner.save()
    assert search("olga").hits == []


def test_kind_narrows_the_results_but_keeps_the_counts_of_every_kind(cast):
    S.create_item(actor=cast.contributor, title="Mail relay outage follow-up")
    _incident("INC0000001", "Mail relay down")
    found = search("mail relay", kind="incident")
    assert [h.source.key for h in found.hits] == ["incident"]
    assert {c.key for c in found.counts} == {"item", "incident"}
    assert found.total == 1 and found.kind_label == "Incidents"


def test_an_unknown_kind_or_limit_is_an_error_naming_the_field(cast):
    with pytest.raises(ValidationError) as caught:
        search("mail", kind="tickets")
    assert "Unknown kind 'tickets'" in caught.value.message_dict["kind"][0]
    assert "incident" in caught.value.message_dict["kind"][0]
    with pytest.raises(ValidationError) as caught:
        search("mail", limit=0)
    assert "limit" in caught.value.message_dict


def test_counts_say_when_a_kind_had_more_matches_than_were_looked_at(cast, monkeypatch):
    monkeypatch.setattr(services, "PER_KIND", 3)
    for n in range(5):
        _incident(f"INC000000{n}", f"Backup failed {n}", days_ago=5 - n)
    found = search("backup", limit=2)
    assert [c.count for c in found.counts] == [3] and found.capped
    assert len(found.hits) == 2
    # the latest matches are the ones looked at, and the more recent date breaks ties
    assert [h.candidate.ref for h in found.hits] == ["INC0000004", "INC0000003"]


def test_the_title_and_excerpt_mark_the_words_found(cast):
    _incident("INC0000001", "Slow SAN writes", "The SAN controller logged slow writes at night")
    hit = search("san").hits[0]
    assert [s.text for s in hit.title if s.hit] == ["SAN"]
    assert [s.text for s in hit.excerpt if s.hit] == ["SAN"]


def test_interactions_are_found_by_their_number_only(cast):
    from tikting.incidents.models import Interaction

    Interaction.objects.create(number="SD0000001", category="printer", opened_at=timezone.now())
    assert search("printer").hits == []
    assert [h.candidate.ref for h in search("SD0000001").hits] == ["SD0000001"]
