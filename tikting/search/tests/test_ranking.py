import pytest
from django.core.exceptions import ValidationError

from tikting.search import ranking
from tikting.search.query import MAX_LENGTH, MAX_WORDS, parse


def test_the_query_is_read_once_words_folded_and_deduplicated():
    query = parse("  Printer   OFFLINE printer ")
    assert query.text == "Printer OFFLINE printer"
    assert query.words == ("printer", "offline")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "at least two characters"),
        ("   ", "at least two characters"),
        ("x", "at least two characters"),
        ('""', "not only quotes"),
        ("a" * (MAX_LENGTH + 1), f"at most {MAX_LENGTH} characters (this is {MAX_LENGTH + 1})"),
        (" ".join(f"w{i}" for i in range(MAX_WORDS + 1)), f"at most {MAX_WORDS} words"),
    ],
)
def test_a_query_that_cannot_be_searched_is_an_error_naming_the_field(raw, says):
    with pytest.raises(ValidationError) as caught:
        parse(raw)
    assert says in caught.value.message_dict["q"][0]


def test_an_exact_reference_beats_a_title_and_a_title_beats_the_text():
    query = parse("INC0042")
    by_ref = ranking.score(query, ref="INC0042", title="Mail down", text="")
    prefix = ranking.score(query, ref="INC00421", title="Mail down", text="")
    in_text = ranking.score(query, ref="INC0100", title="Mail down", text="duplicate of INC0042")
    assert by_ref > prefix > in_text > 0


def test_words_in_the_title_outrank_the_same_words_in_the_text():
    query = parse("printer offline")
    title = ranking.score(query, ref="INC1", title="Printer offline on floor 3", text="")
    scattered = ranking.score(query, ref="INC2", title="Offline queue for the printer", text="")
    text_only = ranking.score(query, ref="INC3", title="Floor 3 issue", text="the printer is offline")
    one_word = ranking.score(query, ref="INC4", title="Printer toner low", text="")
    assert title > scattered > one_word > text_only


def test_a_word_starting_a_title_word_counts_more_than_one_inside_a_word():
    query = parse("net")
    assert ranking.score(query, ref="", title="Network down", text="") > ranking.score(
        query, ref="", title="Cabinet door", text=""
    )


def test_the_excerpt_is_cut_around_the_first_word_found_and_marks_every_occurrence():
    text = ("Lorem ipsum " * 30) + "the VPN gateway rejected vpn clients " + ("dolor sit " * 30)
    pieces = ranking.excerpt(text, ("vpn",))
    joined = "".join(p.text for p in pieces)
    assert joined.startswith("…") and joined.endswith("…")
    assert len(joined) <= ranking.EXCERPT + 2
    assert [p.text for p in pieces if p.hit] == ["VPN", "vpn"]


def test_a_short_text_is_shown_whole_without_ellipsis():
    pieces = ranking.excerpt("Mail relay\nrestarted", ("relay",))
    assert "".join(p.text for p in pieces) == "Mail relay restarted"
    assert [p.hit for p in pieces] == [False, True, False]
