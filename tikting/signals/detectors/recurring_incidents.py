"""Recurring incidents: groups of incidents alike in where (service, CI, category) and what (text).

Reads the incidents opened in the window (the run's, or its last ``window_days`` days when that
is set; cancelled incidents left out) and groups them three ways, depending on what an incident
carries:

1. **With text** (its short description, else the first 200 characters of its description): within
   a *block* of the same service, CI and category (an empty one is a value of its own), incidents
   whose texts are alike are grouped. A text is normalised (lower case, words of letters and
   digits, a few English stop words dropped, the words sorted and made unique, so word order does
   not count) and cut into **character trigrams of each word** (``^vp vpn pn$``), so a typo
   changes a few trigrams, not the whole word. Two texts are alike when the Jaccard similarity of
   their trigram sets is at least ``similarity``. Candidate pairs come from **MinHash with LSH**
   (24 hashes in 12 bands of 2, within the block; each pair is then checked on the exact sets),
   and alike texts are joined transitively (union-find), as are two wordings whose incidents are
   mostly linked to the same problem: the group is every incident of the window whose text is
   joined. A group with more than ``max_group_size`` incidents is taken
   apart at a stricter similarity (+0.1 at a time up to 0.9): a chain of partly alike texts is not
   one pattern; what is still larger at 0.9 is near-identical text and stays one group.
2. **Without text, on a CI**: incidents with the same service, CI, category, subcategory and
   symptom (the ServiceNow ``u_symptom``, kept in ``raw`` by the import) form a group. A CI with
   more than ``max_group_size`` such incidents in the window is too busy for "it recurs on this CI"
   to mean anything: only its bursts count (below).
3. **Without text or CI** (only a classification): the same classification is no evidence of a
   common cause by itself (a category has its everyday volume), so only **bursts** count: runs of
   incidents each within ``burst_hours`` of the previous one, with the same service, category,
   subcategory and symptom, or the same service, category and subcategory, or the same service
   and category, that come faster than the classification's share of the traffic explains. With
   ``N`` incidents of any kind opened from the run's first to its last incident, ``n`` of them in
   the run and ``p`` the classification's share of all incidents of the window, the run counts
   when ``-log10 P(X ≥ n | Binomial(N, p)) ≥ burst_surprise`` (3 = "1 in 1000 by chance") and
   ``n ≥ burst_ratio × N × p`` (a long run of a busy classification can be "significant" at a
   share barely above its usual one; that is not a burst). Among the many runs of a busy
   classification one is bound to look unusual, so P is multiplied by the number of its runs of
   ``min_group_size`` or more that were tested (Bonferroni; ``burst_correction = 0`` tests each
   run alone): on a year of a million incidents opened at random, that cut the chance "bursts"
   from 1,086 to 276 (bench/recurring_1m.py). Measuring against the traffic of the moment, not a
   rate over the window, keeps the quiet nights, the Monday peaks and a data set's edges from
   looking like bursts. A coarser run that holds finer bursts joins them only when its other
   incidents come faster than usual too (-log10 P ≥ JOIN_SURPRISE), or over the span where bursts
   of two or more finer classes came together (one cause under several subcategories): a sharp
   outage of one subcategory does not pull in its category's ordinary day.

Groups of fewer than ``min_group_size`` incidents are left out.

**Problem or improvement.** A group none of whose incidents is linked to a problem proposes a
*problem* record (``proposes="problem"``). Where its incidents are linked to a problem (the most
linked one counts), the problem exists: the group proposes an *improvement* only when the pattern
persists, i.e. at least ``persist_min`` of its incidents opened more than ``persist_grace_days``
after the problem was opened (the first day is the same outage still being reported); otherwise
problem management has it in hand and nothing is proposed.

**Fingerprint** (stable across runs: from the group's structured key and a hash of its shared
text, never from row ids of one run): ``recurring_incidents:service=<id|none>:ci=<id|none>:``
``category=<hash>:text=<hash of the group's most frequent normalised text>`` for text groups,
``…:class=<hash of subcategory and symptom>`` for CI groups, ``…:burst=<first incident's minute,
UTC>`` for bursts. **Magnitude**: the incidents in the group. **Score**: the incidents weighted by
how recent they are, each counting ``0.5 ** (age / 30 days)`` with its age at the window's end
(12 incidents over the last week score about 11; the same 12 four months earlier about 0.75):
the same size ranks higher while it is still happening.

Thresholds and the figures on real data: docs/signals.md, "Recurring incidents".
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import gc
import hashlib
import random
import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.db.models import CharField, FloatField, Func
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Substr
from django.utils import timezone

from tikting.cmdb.models import ConfigurationItem, Service
from tikting.core.itsm import Practice
from tikting.improvement.choices import SourceChannel
from tikting.incidents.models import Incident
from tikting.lib.display import when
from tikting.problems.models import Problem
from tikting.signals.proposals import Evidence, Progress, Proposal, Window, no_progress

from . import _common as C

NAME = "recurring_incidents"
TITLE = "Recurring incidents"
CHANNEL = SourceChannel.PROBLEM.value
THRESHOLDS: dict[str, float] = {
    "window_days": 0,  # read only the last this many days of the run's window (0: all of it)
    "min_group_size": 3,  # incidents a group needs to be proposed
    "max_group_size": 200,  # above this a group of alike texts is split at a stricter similarity,
    # and a CI's incidents count only as bursts
    "similarity": 0.5,  # Jaccard similarity of two texts' character-trigram sets to be alike
    "burst_hours": 2.0,  # classification only: the longest gap between incidents of one burst
    "burst_surprise": 3.0,  # classification only: -log10 P(X >= n | Binomial(N, p)) a burst needs
    "burst_ratio": 2.0,  # classification only: and at least this many times the incidents expected
    "burst_correction": 1,  # 1: P times the classification's runs tested (Bonferroni); 0: P per run
    "persist_min": 3,  # incidents after the problem was opened that make it an improvement
    "persist_grace_days": 1.0,  # incidents this soon after the problem opened do not count
}
HALF_LIFE_DAYS = 30.0  # the score's recency weighting
SYMPTOM_KEY = "u_symptom"  # where the ServiceNow import keeps the symptom in `raw`
TEXT_CHARS = 200  # of the description, read when there is no short description
CHUNK = 10_000  # rows fetched at a time
PROGRESS_EVERY = 50_000

# MinHash: 24 hash functions in 12 bands of 2 rows. A pair of texts becomes a candidate when one
# band agrees: 97 % of pairs at similarity 0.5, 88 % at 0.4, 68 % at 0.3; candidates are checked
# on the exact trigram sets, so the bands only decide what is compared, not what is alike.
BANDS = 12
ROWS = 2
HASHES = BANDS * ROWS
_PRIME = (1 << 61) - 1
_rng = random.Random(20261205)  # fixed: the same hash functions in every run and process
_PERMUTATIONS = tuple((_rng.randrange(1, _PRIME), _rng.randrange(0, _PRIME)) for _ in range(HASHES))
JOIN_SURPRISE = 1.0  # -log10 P the rest of a coarser run needs to join the finer bursts in it
STRICTEST = 0.9  # a group of texts this alike stays whole whatever its size
STOP_WORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "for", "from", "has", "have", "i", "in")
    + ("is", "it", "its", "me", "my", "of", "on", "or", "our", "please", "the", "this", "to", "was", "we")
    + ("when", "with", "you", "your")
)
_WORD = re.compile(r"[^\W_]+")
WEEKS_SHOWN = 26  # per-week counts named in an explanation

Block = tuple[int | None, int | None, str]  # service, CI, category


# --- Texts --------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """The words of a text that count, lower case, unique and sorted ("" when none)."""
    words = {w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in STOP_WORDS}
    return " ".join(sorted(words))


@lru_cache(maxsize=1 << 17)
def _word_shingles(word: str) -> frozenset[str]:
    padded = f"^{word}$"
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


@lru_cache(maxsize=1 << 17)
def _shingle_hashes(shingle: str) -> array[int]:
    """The HASHES hash values of one trigram (a few tens of thousands of trigrams exist at all);
    arrays of 8-byte values, a quarter of the memory of a tuple of Python ints."""
    v = int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "little") % _PRIME
    return array("Q", ((a * v + b) % _PRIME for a, b in _PERMUTATIONS))


@lru_cache(maxsize=1 << 16)
def _word_minhash(word: str) -> array[int]:
    """The MinHash of one word's trigrams (a word has two or more); a text's is the element-wise
    minimum over its words."""
    return array("Q", map(min, *(_shingle_hashes(s) for s in _word_shingles(word))))


def minhash(canonical: str) -> Sequence[int]:
    vectors = [_word_minhash(w) for w in canonical.split(" ")]
    return vectors[0] if len(vectors) == 1 else array("Q", map(min, *vectors))


@lru_cache(maxsize=1 << 13)
def shingles(canonical: str) -> frozenset[str]:
    """The character trigrams of each word of a normalised text."""
    return frozenset().union(*(_word_shingles(w) for w in canonical.split(" ")))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of two normalised texts' trigram sets."""
    sa, sb = shingles(a), shingles(b)
    inter = len(sa & sb)
    return inter / (len(sa) + len(sb) - inter) if inter else 0.0


def stable_hash(*parts: object) -> str:
    """A short hash that is the same in every run and process (Python's hash() is not)."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Cyclic garbage collection off while millions of small objects are made: each collection
    scans every object alive, and made half the run's time at a million incidents. Nothing here
    makes reference cycles; reference counting frees what is dropped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- Union-find -----------------------------------------------------------------------------------


class _Sets:
    """Union-find over 0..n-1 (path halving, the smaller index as root: deterministic)."""

    def __init__(self, n: int = 0) -> None:
        self.parent = list(range(n))

    def add(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb

    def groups(self, members: Iterable[int]) -> list[list[int]]:
        found: dict[int, list[int]] = defaultdict(list)
        for m in members:
            found[self.find(m)].append(m)
        return list(found.values())


# --- Reading --------------------------------------------------------------------------------------


@dataclass
class _Incidents:
    """The window's incidents in parallel arrays (no model instances): index i is one incident."""

    pks: array[int] = field(default_factory=lambda: array("q"))
    times: array[float] = field(default_factory=lambda: array("d"))  # opened, epoch seconds
    problems: array[int] = field(default_factory=lambda: array("q"))  # 0: none
    priorities: array[int] = field(default_factory=lambda: array("b"))  # 0: none
    keys: list[str] = field(default_factory=list)  # the source key (external key, else number)

    def __len__(self) -> int:
        return len(self.pks)


@dataclass
class _Node:
    """One normalised text in one block, with the incidents that carry it."""

    block: int
    canonical: str
    sample: str  # the first original text seen
    members: list[int] = field(default_factory=list)
    problem: int = 0  # the problem at least half its incidents are linked to (0: none)


def _dominant(problems: Iterable[int]) -> int:
    """The problem at least half of these incidents are linked to (0 for none)."""
    values = list(problems)
    counts = Counter(p for p in values if p)
    if not counts:
        return 0
    problem, count = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return problem if 2 * count >= len(values) else 0


@dataclass
class Group:
    """A group of alike incidents found in the window (before it becomes a proposal)."""

    rule: str  # "text", "ci" or "burst"
    service_id: int | None
    ci_id: int | None
    category: str
    subcategory: str  # shared by every member, else ""
    symptom: str  # shared by every member, else ""
    members: list[int]  # incident pks, oldest first
    keys: list[str]  # their source keys, same order
    times: list[float]  # their opening times (epoch seconds, UTC), same order
    priorities: list[int | None]
    problems: list[int | None]
    text: str = ""  # the most frequent original text (text groups)
    variants: int = 0  # distinct normalised texts (text groups)
    shared_words: list[str] = field(default_factory=list)
    similarity: float = 0.0  # the threshold the group was joined at (text groups)
    surprise: float = 0.0  # bursts: -log10 P of the burst
    burst_traffic: int = 0  # bursts: incidents of any kind opened over the burst
    burst_share: float = 0.0  # bursts: the classification's share of the window's incidents
    burst_p: float = 1.0  # bursts: P of the strongest run alone
    burst_tests: int = 1  # bursts: the runs of its classification tested (P is multiplied by them)
    signature: str = ""  # the stable text/class part of the fingerprint

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def first(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.times[0], tz=dt.UTC)

    @property
    def last(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.times[-1], tz=dt.UTC)


@dataclass
class Found:
    """What find_groups() saw: the window it read, the groups, and how many incidents it read."""

    window: Window
    groups: list[Group]
    incidents: int
    with_text: int
    with_ci: int


class EpochSeconds(Func):
    """A date-time as seconds since 1970 (UTC), a float computed by the database: converting a
    million timestamps into Python datetimes costs seconds that a float does not."""

    output_field = FloatField()
    arity = 1

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        sql, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            return f"date_part('epoch', {sql})", tuple(params)  # double precision
        # SQLite keeps UTC text that julianday() reads, good to some 50 µs: rounded to the millisecond
        return f"ROUND((julianday({sql}) - 2440587.5) * 86400.0, 3)", tuple(params)


def _rows(window: Window) -> Iterable[tuple[Any, ...]]:
    return (
        Incident.objects.filter(opened_at__gte=window.start, opened_at__lt=window.end)
        .exclude(status=Incident.Status.CANCELLED)
        .annotate(
            opened=EpochSeconds("opened_at"),
            symptom=KeyTextTransform(SYMPTOM_KEY, "raw"),
            description_head=Substr("description", 1, TEXT_CHARS, output_field=CharField()),
        )
        .order_by()
        .values_list(
            "pk",
            "external_key",
            "number",
            "opened",
            "service_id",
            "ci_id",
            "category",
            "subcategory",
            "symptom",
            "short_description",
            "description_head",
            "problem_id",
            "priority",
        )
        .iterator(chunk_size=CHUNK)
    )


# --- Grouping -------------------------------------------------------------------------------------


def find_groups(
    window: Window, *, thresholds: dict[str, float] | None = None, progress: Progress = no_progress
) -> Found:
    """Every group of alike incidents opened in the window (module docstring), oldest first; the
    window read is Found.window (the run's, or its last `window_days` days)."""
    with _gc_paused():
        return _find_groups(window, thresholds, progress)


def effective_window(window: Window, thresholds: dict[str, float]) -> Window:
    """The run's window, or its last `window_days` days when that is set and shorter."""
    days = thresholds.get("window_days", 0)
    if days and days > 0:
        return Window(max(window.start, window.end - dt.timedelta(days=days)), window.end)
    return window


def _find_groups(window: Window, thresholds: dict[str, float] | None, progress: Progress) -> Found:
    t = C.merged(THRESHOLDS, thresholds)
    window = effective_window(window, t)
    min_size = max(2, int(t["min_group_size"]))
    max_size = max(min_size, int(t["max_group_size"]))
    theta = min(1.0, max(0.0, t["similarity"]))
    burst_seconds = t["burst_hours"] * 3600.0

    inc = _Incidents()
    blocks: dict[Block, int] = {}
    block_keys: list[Block] = []
    nodes: dict[tuple[int, str], int] = {}
    node_list: list[_Node] = []
    on_ci: dict[tuple[int | None, int, str, str, str], list[int]] = defaultdict(list)
    classified: dict[tuple[int | None, str, str, str], list[int]] = defaultdict(list)
    canon_of: dict[str, str] = {}
    with_text = with_ci = 0
    progress(0, None)
    for row in _rows(window):
        (pk, ext, number, opened, service, ci, category, subcategory, symptom, short, head, problem, prio) = (
            row
        )
        i = len(inc)
        inc.pks.append(pk)
        inc.times.append(opened)
        inc.problems.append(problem or 0)
        inc.priorities.append(prio or 0)
        inc.keys.append(ext or number)
        category = (category or "").strip()
        text = short or head or ""
        canonical = canon_of.get(text)
        if canonical is None:
            canonical = canon_of[text] = normalise(text) if text else ""
        if canonical:
            with_text += 1
            bkey = (service, ci, category)
            b = blocks.get(bkey)
            if b is None:
                b = blocks[bkey] = len(block_keys)
                block_keys.append(bkey)
            n = nodes.get((b, canonical))
            if n is None:
                n = nodes[(b, canonical)] = len(node_list)
                node_list.append(_Node(block=b, canonical=canonical, sample=text.strip()))
            node_list[n].members.append(i)
            continue
        subcategory = (subcategory or "").strip()
        symptom = (symptom or "").strip() if isinstance(symptom, str) else ""
        if ci is not None:
            with_ci += 1
            on_ci[(service, ci, category, subcategory, symptom)].append(i)
        else:
            classified[(service, category, subcategory, symptom)].append(i)
        if i % PROGRESS_EVERY == 0 and i:
            progress(i, None)
    total = len(inc)
    progress(total, None)
    del canon_of, nodes

    groups: list[Group] = []
    # 1. alike texts within a block
    for node in node_list:
        node.problem = _dominant(inc.problems[i] for i in node.members)
    for members_of_group, sim in _text_groups(node_list, theta, max_size):
        members = [i for n in members_of_group for i in node_list[n].members]
        if len(members) >= min_size:
            groups.append(_text_group(inc, block_keys, node_list, members_of_group, members, sim))
    del node_list
    # 2. a CI's incidents, or only its bursts when it is busy
    busy: list[tuple[int | None, int, str, str, str]] = []
    for key, members in on_ci.items():
        if len(members) < min_size:
            continue
        if len(members) <= max_size:
            service, ci, category, subcategory, symptom = key
            signature = stable_hash(subcategory, symptom)
            groups.append(_group(inc, "ci", service, ci, category, members, subcategory, symptom, signature))
        else:
            busy.append(key)
    # 3. bursts of a classification, and of a busy CI's incidents
    all_times = sorted(inc.times)
    rule = _BurstRule(
        all_times, min_size, burst_seconds, t["burst_surprise"], t["burst_ratio"], t["burst_correction"] >= 1
    )
    groups += _bursts(inc, classified, rule, ci_id=None)
    for service, ci, category, subcategory, symptom in busy:
        members = on_ci[(service, ci, category, subcategory, symptom)]
        groups += _bursts(inc, {(service, category, subcategory, symptom): members}, rule, ci_id=ci, levels=1)
    groups.sort(key=lambda g: (g.times[0], g.rule, g.signature))
    return Found(window=window, groups=groups, incidents=total, with_text=with_text, with_ci=with_ci)


def _text_groups(nodes: Sequence[_Node], theta: float, max_size: int) -> list[tuple[list[int], float]]:
    """Groups of alike texts (node indexes) with the similarity they were joined at, block by block
    (texts are compared within a block only, so a block's buckets are dropped once it is done)."""
    by_block: dict[int, list[int]] = defaultdict(list)
    for n, node in enumerate(nodes):
        by_block[node.block].append(n)
    found: list[tuple[list[int], float]] = []
    for block in by_block.values():
        for members, sim in _block_groups(nodes, block, theta, max_size):
            found.append(([block[k] for k in members], sim))
    return found


def _block_groups(
    nodes: Sequence[_Node], block: list[int], theta: float, max_size: int
) -> list[tuple[list[int], float]]:
    """Groups of alike texts within one block, as indexes into `block`."""
    texts = [nodes[n].canonical for n in block]
    sizes = [len(nodes[n].members) for n in block]
    sets = _Sets(len(block))
    pairs: list[tuple[int, int, float]] = []
    compared: set[tuple[int, int]] = set()
    first: dict[int, int] = {}  # bucket → its first text, compared with every later one
    last: dict[int, int] = {}  # bucket → its latest text, compared with the next one
    for k, text in enumerate(texts):
        signature = minhash(text)
        for band in range(BANDS):
            # the band's values as one exact integer (each is below 2**61): no collisions
            key = ((band << 61 | signature[band * ROWS]) << 61) | signature[band * ROWS + 1]
            leader = first.get(key)
            if leader is None:
                first[key] = last[key] = k
                continue
            for other in (leader, last[key]):
                if (other, k) in compared:
                    continue
                compared.add((other, k))
                sim = similarity(texts[other], text)
                if sim >= theta:
                    pairs.append((other, k, sim))
                    sets.union(other, k)
            last[key] = k
    del first, last, compared
    # texts whose incidents are mostly linked to the same problem are one pattern whatever their
    # wording (someone matched them to that problem): joined as if identical
    linked: dict[int, int] = {}
    for k, n in enumerate(block):
        problem = nodes[n].problem
        if problem:
            other = linked.setdefault(problem, k)
            if other != k:
                pairs.append((other, k, 1.0))
                sets.union(other, k)
    pairs_of: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    for pair in pairs:
        pairs_of[sets.find(pair[0])].append(pair)
    found: list[tuple[list[int], float]] = []
    for members in sets.groups(range(len(block))):
        found += _split(sizes, members, pairs_of.get(sets.find(members[0]), []), theta, max_size)
    return found


def _split(
    sizes: Sequence[int],
    members: list[int],
    pairs: list[tuple[int, int, float]],
    theta: float,
    max_size: int,
) -> list[tuple[list[int], float]]:
    """A group of texts, taken apart at stricter similarities while it has too many incidents."""
    size = sum(sizes[n] for n in members)
    if size <= max_size or len(members) == 1 or theta >= STRICTEST - 1e-9:
        return [(members, theta)]
    stricter = min(STRICTEST, round(theta + 0.1, 2))
    inside = set(members)
    kept = [(a, b, s) for a, b, s in pairs if s >= stricter and a in inside and b in inside]
    index = {n: k for k, n in enumerate(members)}
    sets = _Sets(len(members))
    for a, b, s in kept:
        if s >= stricter:
            sets.union(index[a], index[b])
    found: list[tuple[list[int], float]] = []
    for part in sets.groups(range(len(members))):
        found += _split(sizes, [members[k] for k in part], kept, stricter, max_size)
    return found


@dataclass(frozen=True)
class _BurstRule:
    all_times: list[float]  # every incident's opening time in the window, sorted
    min_size: int
    gap: float  # seconds
    needed: float  # surprise
    ratio: float  # observed / expected
    corrected: bool  # P times the runs tested


# members, surprise (corrected), traffic, share, key, P of the run alone, runs tested
_Burst = tuple[list[int], float, int, float, tuple[Any, ...], float, int]


def _bursts(
    inc: _Incidents,
    classified: dict[tuple[int | None, str, str, str], list[int]],
    rule: _BurstRule,
    *,
    ci_id: int | None,
    levels: int = 3,
) -> list[Group]:
    """Bursts of each classification (service, category, subcategory, symptom) and of its coarser
    levels (without the symptom; without the subcategory either); overlapping bursts are one group.
    A coarser run that holds finer bursts joins them only when its other incidents come faster
    than usual too (JOIN_SURPRISE): the same cause classified under several subcategories, not a
    sharp outage of one subcategory inside the category's ordinary day."""
    total = len(inc)
    found: list[_Burst] = []
    level: dict[tuple[Any, ...], list[int]] = {k: list(v) for k, v in classified.items()}
    tested: set[tuple[Any, ...]] = set()
    claimed: dict[int, int] = {}  # incident → the finer burst (index in found) holding it
    for depth in range(levels):
        before = len(found)
        for key, members in level.items():
            if len(members) >= rule.min_size and key not in tested:
                _runs(inc, members, len(members) / total, key, rule, found, claimed)
        for b in range(before, len(found)):
            claimed.update(dict.fromkeys(found[b][0], b))
        if depth + 1 == levels:
            break
        coarser: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        children: Counter[tuple[Any, ...]] = Counter()
        for key, members in level.items():
            coarser[key[:-1]] += members
            children[key[:-1]] += 1
        # a coarser class with a single finer class holds the same incidents: tested already
        tested = {key for key, count in children.items() if count == 1}
        level = coarser
    if not found:
        return []
    sets = _Sets(len(found))
    seen: dict[int, int] = {}
    for b, burst in enumerate(found):
        for i in burst[0]:
            sets.union(seen.setdefault(i, b), b)
    groups = []
    for parts in sets.groups(range(len(found))):
        members = sorted({i for b in parts for i in found[b][0]}, key=lambda i: (inc.times[i], inc.pks[i]))
        _m, surprise, traffic, share, key, p, tests = max(
            (found[b] for b in parts), key=lambda f: (f[1], -len(f[4]))
        )
        keys = [found[b][4] for b in parts]
        subcategory = _shared([k[2] if len(k) > 2 else None for k in keys])
        symptom = _shared([k[3] if len(k) > 3 else None for k in keys])
        first = dt.datetime.fromtimestamp(inc.times[members[0]], tz=dt.UTC)
        signature = first.strftime("%Y%m%dT%H%M")
        group = _group(inc, "burst", key[0], ci_id, key[1], members, subcategory, symptom, signature)
        group.surprise, group.burst_traffic, group.burst_share = surprise, traffic, share
        group.burst_p, group.burst_tests = p, tests
        groups.append(group)
    return groups


def _runs(
    inc: _Incidents,
    members: list[int],
    share: float,
    key: tuple[Any, ...],
    rule: _BurstRule,
    found: list[_Burst],
    claimed: dict[int, int],
) -> None:
    """The runs of `members` (each within rule.gap of the previous one) that come faster than the
    classification's share of all incidents explains, allowing for the number of runs tested: with
    k runs of min_size or more, P is multiplied by k (Bonferroni), since among many runs of a
    busy classification one is bound to look unusual."""
    members.sort(key=inc.times.__getitem__)
    times = inc.times
    candidates: list[tuple[list[int], float, int]] = []
    joining: list[tuple[list[int], float, int]] = []
    run = [members[0]]
    for i in [*members[1:], -1]:
        if i >= 0 and times[i] - times[run[-1]] <= rule.gap:
            run.append(i)
            continue
        if len(run) >= rule.min_size:
            start, end = times[run[0]], times[run[-1]]
            traffic = bisect.bisect_right(rule.all_times, end) - bisect.bisect_left(rule.all_times, start)
            held = [i for i in run if i in claimed] if claimed else []
            if held:
                # holds finer bursts: its other incidents must come faster than usual too, else
                # it joins only finer bursts of two or more classes that came together, with the
                # incidents between them (one cause classified under several subcategories)
                n, rest = len(run) - len(held), traffic - len(held)
                p = C.binom_sf(n, rest, share)
                if n and n >= rule.ratio * rest * share and C.surprise(p) >= JOIN_SURPRISE:
                    joining.append((run, p, traffic))
                else:
                    for lo, hi in _together(found, {claimed[i] for i in held}, times, rule.gap):
                        joining.append(([i for i in run if lo <= times[i] <= hi], 1.0, traffic))
            elif len(run) >= rule.ratio * traffic * share:
                candidates.append((run, C.binom_sf(len(run), traffic, share), traffic))
        if i >= 0:
            run = [i]
    tests = len(candidates) if rule.corrected else 1
    for run, p, traffic in candidates:
        surprise = C.surprise(min(1.0, p * tests))
        if surprise >= rule.needed:
            found.append((run, surprise, traffic, share, key, p, tests))
    for run, p, traffic in joining:
        found.append((run, C.surprise(p), traffic, share, key, p, 1))


def _together(
    found: list[_Burst], bursts: set[int], times: array[float], gap: float
) -> list[tuple[float, float]]:
    """The spans where finer bursts of two or more classes came together: each within `gap` of
    the previous one's end."""
    spans = sorted((times[found[b][0][0]], times[found[b][0][-1]], found[b][4]) for b in bursts)
    together = []
    lo, hi, classes = spans[0][0], spans[0][1], {spans[0][2]}
    for start, end, key in [*spans[1:], (float("inf"), float("inf"), ())]:
        if start <= hi + gap:
            hi, classes = max(hi, end), classes | {key}
            continue
        if len(classes) >= 2:
            together.append((lo, hi))
        lo, hi, classes = start, end, {key}
    return together


def _shared(values: Sequence[str | None]) -> str:
    """The value every one of `values` has ("" when they differ or one is unknown)."""
    first = values[0] if values else None
    return first if first is not None and all(v == first for v in values) else ""


def _group(
    inc: _Incidents,
    rule: str,
    service_id: int | None,
    ci_id: int | None,
    category: str,
    members: list[int],
    subcategory: str,
    symptom: str,
    signature: str,
) -> Group:
    members = sorted(members, key=lambda i: (inc.times[i], inc.pks[i]))
    return Group(
        rule=rule,
        service_id=service_id,
        ci_id=ci_id,
        category=category,
        subcategory=subcategory,
        symptom=symptom,
        members=[inc.pks[i] for i in members],
        keys=[inc.keys[i] for i in members],
        times=[inc.times[i] for i in members],
        priorities=[inc.priorities[i] or None for i in members],
        problems=[inc.problems[i] or None for i in members],
        signature=signature,
    )


TIES = 20  # most frequent texts weighed against each other to name a group
PEERS = 200  # ... against the group's most frequent texts


def _representative(texts: Sequence[str], counts: Sequence[int]) -> int:
    """The text that names a group: the most frequent normalised text, so that the fingerprint
    stays while the group grows; among equally frequent ones the most alike to the group's other
    texts (a typo rarely wins), then the alphabetically first. Deterministic: no run-dependent order."""
    top = max(counts)
    tied = sorted((k for k, c in enumerate(counts) if c == top), key=texts.__getitem__)[:TIES]
    if len(tied) == 1:
        return tied[0]
    peers = sorted(range(len(texts)), key=lambda k: (-counts[k], texts[k]))[:PEERS]

    def closeness(k: int) -> float:
        return sum(counts[p] * similarity(texts[k], texts[p]) for p in peers if p != k)

    return min(tied, key=lambda k: (-round(closeness(k), 9), texts[k]))


def _text_group(
    inc: _Incidents,
    block_keys: list[Block],
    nodes: Sequence[_Node],
    texts: list[int],
    members: list[int],
    sim: float,
) -> Group:
    service, ci, category = block_keys[nodes[texts[0]].block]
    top = _representative([nodes[n].canonical for n in texts], [len(nodes[n].members) for n in texts])
    top = texts[top]
    words: Counter[str] = Counter()
    for n in texts:
        for word in nodes[n].canonical.split(" "):
            words[word] += len(nodes[n].members)
    half = len(members) / 2
    group = _group(inc, "text", service, ci, category, members, "", "", stable_hash(nodes[top].canonical))
    group.text = nodes[top].sample
    group.variants = len(texts)
    group.shared_words = sorted(w for w, count in words.items() if count >= half)
    group.similarity = sim
    return group


# --- Proposals ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProblemRef:
    pk: int
    key: str
    opened: dt.datetime
    status: str


@dataclass(frozen=True)
class Verdict:
    """What a group proposes: "problem", "improvement", or "" (a problem has it in hand)."""

    proposes: str
    problem: ProblemRef | None = None
    linked: int = 0  # members linked to that problem
    after: int = 0  # members opened after the problem (past the grace days)


def judge(group: Group, problems: dict[int, ProblemRef], thresholds: dict[str, float]) -> Verdict:
    """Problem or improvement (module docstring, "Problem or improvement")."""
    linked = Counter(p for p in group.problems if p is not None and p in problems)
    if not linked:
        return Verdict("problem")
    pk, count = min(linked.items(), key=lambda kv: (-kv[1], problems[kv[0]].opened, kv[0]))
    problem = problems[pk]
    since = problem.opened.timestamp() + thresholds["persist_grace_days"] * 86400
    after = sum(1 for t in group.times if t > since)
    proposes = "improvement" if after >= max(1, int(thresholds["persist_min"])) else ""
    return Verdict(proposes, problem, count, after)


def problems_of(groups: Iterable[Group]) -> dict[int, ProblemRef]:
    """The problems the groups' incidents are linked to, in one query."""
    wanted = {p for g in groups for p in g.problems if p is not None}
    found: dict[int, ProblemRef] = {}
    rows = Problem.objects.filter(pk__in=wanted).values_list(
        "pk", "external_key", "number", "opened_at", "status"
    )
    for pk, ext, number, opened, status in rows.iterator() if wanted else ():
        found[pk] = ProblemRef(pk=pk, key=C.record_key(ext, number), opened=opened, status=status)
    return found


@dataclass
class Labels:
    services: dict[int, str]
    cis: dict[int, str]

    @classmethod
    def of(cls, groups: Sequence[Group]) -> Labels:
        return cls(
            services=C.labels(Service, (g.service_id for g in groups)),
            cis=C.labels(ConfigurationItem, (g.ci_id for g in groups)),
        )

    def where(self, group: Group) -> str:
        """ "service E-mail, CI MX-01" ("no service or CI" when neither is recorded)."""
        parts = []
        if group.service_id is not None:
            parts.append(f"service {self.services.get(group.service_id, group.service_id)}")
        if group.ci_id is not None:
            parts.append(f"CI {self.cis.get(group.ci_id, group.ci_id)}")
        return ", ".join(parts) or "no service or CI"


def classification(group: Group) -> str:
    """ "category Software, subcategory Mail" (the parts every member shares)."""
    parts = [f"category {group.category}" if group.category else "no category"]
    if group.subcategory:
        parts.append(f"subcategory {group.subcategory}")
    if group.symptom:
        parts.append(f"symptom {group.symptom}")
    return ", ".join(parts)


def label(group: Group, labels: Labels) -> str:
    """The group in a few words: its text, or its classification, and where."""
    if group.rule == "text":
        return f"“{_clip(group.text, 80)}” ({labels.where(group)}, {classification(group)})"
    return f"{classification(group)} ({labels.where(group)})"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class Mondays:
    """The Monday (site time) of the week an epoch time falls in, cached per quarter hour: every
    time zone's offset is a multiple of 15 minutes, so one conversion serves the quarter hour."""

    def __init__(self) -> None:
        self.zone = timezone.get_current_timezone()
        self.cache: dict[int, dt.date] = {}

    def __call__(self, t: float) -> dt.date:
        slot = int(t // 900)
        monday = self.cache.get(slot)
        if monday is None:
            day = dt.datetime.fromtimestamp(slot * 900, tz=self.zone).date()
            monday = self.cache[slot] = day - dt.timedelta(days=day.weekday())
        return monday


def weekly(group: Group, window: Window, weeks: Mondays | None = None) -> list[tuple[dt.date, int]]:
    """Incidents per week (weeks start on Monday, site time), from the group's first week to the
    window's last, empty weeks included."""
    monday = weeks or Mondays()
    counts = Counter(map(monday, group.times))
    week = monday(group.times[0])
    last = monday(max(window.end.timestamp() - 1e-6, group.times[-1]))
    found = []
    while week <= last:
        found.append((week, counts.get(week, 0)))
        week += dt.timedelta(days=7)
    return found


def trend(weeks: Sequence[tuple[dt.date, int]]) -> str:
    """rising, falling, steady, or one burst: the later half of the weeks against the earlier."""
    active = [n for _w, n in weeks]
    if sum(1 for n in active if n) <= 1:
        return "one burst"
    half = len(active) // 2
    early, late = sum(active[: len(active) - half]), sum(active[len(active) - half :])
    if late >= 1.5 * max(early, 1):
        return "rising"
    if late <= early / 1.5:
        return "falling"
    return "steady"


def describe_weeks(weeks: Sequence[tuple[dt.date, int]]) -> str:
    """ "per week from 2 Mar 2026: 3, 0, 4; none in the 5 weeks since" (at most WEEKS_SHOWN)."""
    last_active = max(k for k, (_w, n) in enumerate(weeks) if n)
    active, quiet = list(weeks[: last_active + 1]), len(weeks) - last_active - 1
    cut = len(active) > WEEKS_SHOWN
    shown = active[-WEEKS_SHOWN:]
    text = f"per week from {_day(shown[0][0])}{' (earlier weeks left out)' if cut else ''}: "
    text += ", ".join(str(n) for _w, n in shown)
    if quiet:
        text += f"; none in the {quiet} week(s) since, to the window's end"
    else:
        text += " (the last week is the window's last)"
    return text


def _day(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def score(group: Group, window: Window) -> float:
    """The incidents weighted by recency: each counts 0.5 ** (its age at the window's end / 30 days)."""
    end = window.end.timestamp()
    half_life = HALF_LIFE_DAYS * 86400
    return sum(0.5 ** (max(0.0, end - t) / half_life) for t in group.times)


def fingerprint(group: Group) -> str:
    service = group.service_id if group.service_id is not None else "none"
    ci = group.ci_id if group.ci_id is not None else "none"
    part = {"text": "text", "ci": "class", "burst": "burst"}[group.rule]
    return f"{NAME}:service={service}:ci={ci}:category={stable_hash(group.category)}:{part}={group.signature}"


def _rule_sentence(group: Group, thresholds: dict[str, float]) -> str:
    min_size = int(thresholds["min_group_size"])
    if group.rule == "text":
        return (
            f"Grouped because their texts are at least {group.similarity:.0%} alike (Jaccard similarity of "
            "the character trigrams of their words, candidates found with MinHash/LSH) within the same "
            "service, CI and category, or most incidents of two wordings are linked to the same problem; "
            f"a group needs {min_size} incidents."
        )
    if group.rule == "ci":
        return (
            "They carry no text to compare: grouped on their structured fields alone (the same service, "
            "CI, category, subcategory and symptom), at most "
            f"{int(thresholds['max_group_size'])} on one CI in the window (a busier CI counts only in "
            f"bursts); a group needs {min_size} incidents."
        )
    expected = group.burst_traffic * group.burst_share
    why = (
        "They carry no text and no CI, and a classification alone is no evidence of a common cause"
        if group.ci_id is None
        else "They carry no text, and their CI has more than "
        f"{int(thresholds['max_group_size'])} such incidents in the window"
    )
    corrected = min(1.0, group.burst_p * group.burst_tests)
    tested = (
        f"; its classification had {group.burst_tests} runs of {min_size} or more in the window, so the "
        f"chance that one of them looks like this is about {C.fmt_p(corrected)}"
        if group.burst_tests > 1
        else ""
    )
    return (
        f"{why}, so only a burst counts: each came within {thresholds['burst_hours']:g} h of the previous "
        f"one, and {group.burst_traffic} incidents of any kind were opened over that time, of which this "
        f"classification makes {group.burst_share:.2%} in the window: about {expected:.2f} expected, "
        f"{group.size} came. Chance explains such a run with P = {C.fmt_p(group.burst_p)}{tested} "
        f"(-log10 = {group.surprise:.1f}; at least {thresholds['burst_surprise']:g} needed, and at least "
        f"{thresholds['burst_ratio']:g} times the incidents expected); a group needs {min_size} incidents."
    )


def _problem_sentence(verdict: Verdict, thresholds: dict[str, float]) -> str:
    if verdict.problem is None:
        return "None of them is linked to a problem: a problem record is proposed, to find the common cause."
    grace = thresholds["persist_grace_days"]
    return (
        f"{verdict.linked} of them {'is' if verdict.linked == 1 else 'are'} linked to problem "
        f"{verdict.problem.key} (opened "
        f"{_day(timezone.localtime(verdict.problem.opened).date())}, status {verdict.problem.status}), and "
        f"{verdict.after} were opened more than {grace:g} day(s) after it: the pattern persists after the "
        "problem was opened, so an improvement is proposed (the fix, the workaround, or how incidents "
        "are matched to known problems did not stop it)."
    )


def to_proposal(
    group: Group,
    verdict: Verdict,
    window: Window,
    labels: Labels,
    thresholds: dict[str, float],
    mondays: Mondays | None = None,
) -> Proposal:
    n = group.size
    weeks = weekly(group, window, mondays)
    start, end = C.period(window)
    first, last = timezone.localtime(group.first), timezone.localtime(group.last)
    what = label(group, labels)
    span = last - first
    span_text = (
        f"{span.total_seconds() / 3600:.1f} hours" if span < dt.timedelta(days=2) else f"{span.days} days"
    )
    if group.rule == "text":
        opening = (
            f"{n} incidents ({labels.where(group)}, {classification(group)}) opened between "
            f"{when(first)} and {when(last)} ({span_text}) have alike texts, most often "
            f"“{_clip(group.text, 160)}”"
            + (f" ({group.variants} different wordings)" if group.variants > 1 else "")
            + (
                f"; most of them share the words {', '.join(group.shared_words)}"
                if group.shared_words
                else ""
            )
            + "."
        )
    else:
        opening = (
            f"{n} incidents ({labels.where(group)}, {classification(group)}) opened between "
            f"{when(first)} and {when(last)} ({span_text})."
        )
    trend_word = trend(weeks)
    explanation = " ".join(
        [
            opening,
            f"Trend ({trend_word}): {describe_weeks(weeks)}.",
            _rule_sentence(group, thresholds),
            _problem_sentence(verdict, thresholds),
        ]
    )
    urgent = sum(1 for p in group.priorities if p is not None and p <= 2)
    impact = C.clamp_rating(C.rating(n, (5, 10, 25, 50)) + (1 if urgent else 0))
    window_weeks = C.days_in(window) / 7
    per_week = n / window_weeks
    evidence = [
        Evidence(kind="incident", pk=pk, key=key, role="member")
        for pk, key in zip(group.members, group.keys, strict=True)
    ]
    if verdict.problem is not None:
        evidence.append(
            Evidence(kind="problem", pk=verdict.problem.pk, key=verdict.problem.key, role="problem")
        )
    if verdict.proposes == "improvement" and verdict.problem is not None:
        title = f"Incidents keep recurring despite problem {verdict.problem.key}: {what} ({n} incidents)"
    else:
        title = f"Recurring incidents: {what} ({n} incidents)"
    return Proposal(
        detector=NAME,
        fingerprint=fingerprint(group),
        title=title[:200],
        explanation=explanation,
        score=score(group, window),
        magnitude=float(n),
        period_start=start,
        period_end=end,
        evidence=evidence,
        figures={
            "rule": group.rule,
            "incidents": n,
            "first_opened": first.isoformat(),
            "last_opened": last.isoformat(),
            "weekly": {week.isoformat(): count for week, count in weeks},
            "trend": trend_word,
            "service": labels.services.get(group.service_id, "") if group.service_id is not None else "",
            "ci": labels.cis.get(group.ci_id, "") if group.ci_id is not None else "",
            "category": group.category,
            "subcategory": group.subcategory,
            "symptom": group.symptom,
            "text": group.text,
            "wordings": group.variants,
            "shared_words": group.shared_words,
            "similarity": group.similarity if group.rule == "text" else None,
            "burst_surprise": group.surprise if group.rule == "burst" else None,
            "burst_traffic": group.burst_traffic if group.rule == "burst" else None,
            "burst_share": group.burst_share if group.rule == "burst" else None,
            "burst_p": group.burst_p if group.rule == "burst" else None,
            "burst_runs_tested": group.burst_tests if group.rule == "burst" else None,
            "problem": verdict.problem.key if verdict.problem else None,
            "linked_to_problem": verdict.linked,
            "after_problem": verdict.after,
            "urgent_incidents": urgent,
            "thresholds": dict(thresholds),
            "baseline": per_week,
            "unit": "incidents/week",
            "lower_is_better": True,
            "indicator": f"Incidents like {what} per week"[:200],
        },
        practice=Practice.PROBLEM.value,
        service_id=group.service_id,
        impact=impact,
        effort=3,
        rating_reason=(
            f"Impact {impact}: {n} incidents (5, 10, 25 and 50 raise the rating)"
            + (f", {urgent} of them critical or high priority (one step more)" if urgent else "")
            + ". Effort 3: finding a common cause is an investigation whose size is unknown until it starts."
        ),
        proposes="improvement" if verdict.proposes == "improvement" else "problem",
    )


def detect(window: Window, *, thresholds: dict[str, float], progress: Progress) -> list[Proposal]:
    t = C.merged(THRESHOLDS, thresholds)
    with _gc_paused():
        return _detect(window, t, progress)


def _detect(window: Window, t: dict[str, float], progress: Progress) -> list[Proposal]:
    found = find_groups(window, thresholds=t, progress=progress)
    window = found.window
    problems = problems_of(found.groups)
    labels = Labels.of(found.groups)
    mondays = Mondays()
    proposals = []
    for group in found.groups:
        verdict = judge(group, problems, t)
        if verdict.proposes:
            proposals.append(to_proposal(group, verdict, window, labels, t, mondays))
    return proposals
