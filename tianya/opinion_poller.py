"""The public-opinion poller: read a feed, store its new posts, every 20 minutes (issue 14).

A source is a file path or an http(s) URL holding a JSON feed (a list of posts, or an
object with an ``items`` list) or an RSS 2.0 / Atom feed. Each poll:

1. reads the whole feed; an entry that is not a post (not an object, no id, no text, a
   time without its offset, an unknown platform, a bad point) is refused with a log line
   naming the entry and why, and the rest goes in;
2. drops the posts already stored (a post seen twice is stored once), sorts the others by
   time and ingests them in batches (:func:`analytics.opinion.ingest.ingest`: posts,
   topics, cases and the topic state of a batch commit together);
3. records the source's checkpoint (last poll, posts taken) with the last batch.

A crash (even SIGKILL) rolls back only the batch being written: the next poll finds its
posts unseen and the state as before it, so nothing is lost or doubled, and the topics
come out as without the crash.

JSON entry fields: ``post_id`` (or ``id``), ``platform``, ``posted_at`` (or ``time``,
RFC 3339 with offset), ``text``, optional ``lon``/``lat``, ``repost_of``, ``reply_to``
and the personal ``handle``, ``author_id``, ``profile_url``, ``source_url`` (or ``url``).
RSS/Atom: ``guid``/``id``, ``description``/``summary``/``content`` (else the title),
``pubDate``/``published``/``updated``, ``link``, ``author``, ``category`` (a platform code,
else the poller's default platform) and ``georss:point``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import re
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from analytics.opinion.gazetteer import Gazetteer, build_gazetteer
from analytics.opinion.ingest import (
    POSTS,
    CaseRule,
    IngestResult,
    ingest,
    stored_ids,
    validate_posts,
)
from layers.catalogue import LAYERS
from layers.errors import InvalidParameter
from layers.store import Store

log = logging.getLogger("tianya.opinion")

#: Default polling interval: the command center refreshes the pages every 20 minutes.
DEFAULT_EVERY = dt.timedelta(minutes=20)
#: Posts per transaction.
BATCH = 200
#: Layers the gazetteer is built from.
GAZETTEER_LAYERS = ("communities", "grid_cells", "flood_prevention", "party_building", "rivers")
#: Test aid: a function :func:`poll_once` calls inside each write transaction with a stage
#: name (``posts``: a batch's posts written; ``case``: a case created, its topic not yet
#: linked), for a test to kill the process there (``tests/opinionfeedkit.py``); None in use.
PAUSE: Callable[[str], None] | None = None

_FIELDS = ("post_id", "platform", "posted_at", "text", "lon", "lat", "repost_of", "reply_to",
           "handle", "author_id", "profile_url", "source_url")  # fmt: skip
_ALIASES = {"id": "post_id", "time": "posted_at", "url": "source_url"}
_MAX_FEED = 50 * 1024 * 1024


@dataclass
class PollResult:
    """One poll: what the feed held and what went in."""

    entries: int = 0
    new: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    batches: list[IngestResult] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(b.posts for b in self.batches)

    @property
    def cases(self) -> list[str]:
        return [c for b in self.batches for c in b.cases_opened]


def parse_every(text: str) -> dt.timedelta:
    """``20m``, ``1h``, ``90s`` or a number of minutes as an interval (at least 10 s)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not m:
        raise InvalidParameter(f"interval {text!r} is not like 20m, 1h or 90s")
    n = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "": 60}[m.group(2)]
    if n < 10:
        raise InvalidParameter(f"interval {text!r} is shorter than 10 s")
    return dt.timedelta(seconds=n)


# --- reading a feed ----------------------------------------------------------------------------


def fetch(source: str, timeout: float = 30.0) -> bytes:
    """The bytes of a file path or an http(s) URL."""
    if re.match(r"https?://", source):
        req = urllib.request.Request(source, headers={"User-Agent": "tianya-opinion-poller"})
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - http(s) only
            data = r.read(_MAX_FEED + 1)
    else:
        with open(source, "rb") as fh:
            data = fh.read(_MAX_FEED + 1)
    if len(data) > _MAX_FEED:
        raise InvalidParameter(f"feed {source} is larger than {_MAX_FEED // 2**20} MiB")
    return data


def read_feed(data: bytes, platform: str = "forum") -> tuple[list[dict], list[tuple[str, str]]]:
    """Posts of a JSON, RSS or Atom feed, and the entries refused (name, reason).

    ``platform``: the platform of RSS/Atom entries that name none. Each post's ``_pos`` is
    its place in the feed (``#`` and it names an entry without an id).
    """
    head = data.lstrip()[:1]
    if head in (b"[", b"{"):
        try:
            doc = json.loads(data)
        except ValueError as e:
            raise InvalidParameter(f"the feed is not valid JSON: {e}") from None
        items = doc.get("items") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise InvalidParameter("a JSON feed is a list of posts or an object with 'items'")
        rows, bad = [], []
        for i, e in enumerate(items):
            if not isinstance(e, dict):
                bad.append((f"#{i}", f"not an object ({type(e).__name__})"))
                continue
            row = {_ALIASES.get(k, k): v for k, v in e.items()}
            rows.append({"_pos": i, **{k: row.get(k) for k in _FIELDS}})
        return rows, bad
    if head == b"<":
        return _read_xml(data, platform)
    raise InvalidParameter("the feed is neither JSON nor RSS/Atom XML")


_ATOM = "{http://www.w3.org/2005/Atom}"
_GEORSS = "{http://www.georss.org/georss}"


def _read_xml(data: bytes, platform: str) -> tuple[list[dict], list[tuple[str, str]]]:
    try:
        root = ET.fromstring(data)  # noqa: S314 - no entities are expanded by expat's default
    except ET.ParseError as e:
        raise InvalidParameter(f"the feed is not well-formed XML: {e}") from None
    rows, bad = [], []
    if root.tag == f"{_ATOM}feed":
        items = root.findall(f"{_ATOM}entry")

        def get(e, *names):
            for n in names:
                x = e.find(f"{_ATOM}{n}")
                if x is not None:
                    if n == "link":
                        return x.get("href")
                    if n == "author":
                        return (x.findtext(f"{_ATOM}name") or "").strip() or None
                    if n == "category":
                        return x.get("term")
                    return (x.text or "").strip() or None
            return None

        keys = {"id": ("id",), "text": ("content", "summary", "title"),
                "time": ("published", "updated"), "link": ("link",), "author": ("author",),
                "category": ("category",)}  # fmt: skip
    elif root.tag == "rss":
        items = root.findall("./channel/item")

        def get(e, *names):
            for n in names:
                x = e.findtext(n)
                if x is not None and x.strip():
                    return x.strip()
            return None

        keys = {"id": ("guid", "link"), "text": ("description", "title"), "time": ("pubDate",),
                "link": ("link",), "author": ("author",), "category": ("category",)}  # fmt: skip
    else:
        raise InvalidParameter(f"XML root <{root.tag}> is neither <rss> nor an Atom <feed>")
    for i, e in enumerate(items):
        pid = get(e, *keys["id"])
        when = get(e, *keys["time"])
        if when and root.tag == "rss":
            try:
                when = email.utils.parsedate_to_datetime(when).isoformat()
            except (TypeError, ValueError):
                bad.append((pid or f"#{i}", f"pubDate {when!r} is not an RFC 822 date"))
                continue
        cat = get(e, *keys["category"])
        lon = lat = None
        pt = e.findtext(f"{_GEORSS}point")
        if pt:
            try:
                lat, lon = (float(v) for v in pt.split())
            except ValueError:
                bad.append((pid or f"#{i}", f"georss:point {pt!r} is not 'lat lon'"))
                continue
        rows.append(
            {
                "_pos": i,
                "post_id": pid,
                "platform": cat if cat in ("weibo", "forum", "wechat") else platform,
                "posted_at": when,
                "text": get(e, *keys["text"]),
                "lon": lon,
                "lat": lat,
                "repost_of": None,
                "reply_to": None,
                "handle": get(e, *keys["author"]),
                "author_id": None,
                "profile_url": None,
                "source_url": get(e, *keys["link"]),
            }
        )
    return rows, bad


# --- polling -----------------------------------------------------------------------------------


def gazetteer_of(store: Store) -> Gazetteer:
    """The gazetteer of the store's own layers."""
    return build_gazetteer({lid: store.read_frame(LAYERS[lid]) for lid in GAZETTEER_LAYERS})


def poll_once(
    store: Store,
    source: str,
    *,
    gazetteer: Gazetteer | None = None,
    platform: str = "forum",
    batch: int = BATCH,
    cases: CaseRule | None = CaseRule(),  # noqa: B008 - a frozen value
    now: dt.datetime | None = None,
) -> PollResult:
    """Read ``source`` once and store its new posts (see the module docstring)."""
    gazetteer = gazetteer or gazetteer_of(store)
    rows, bad = read_feed(fetch(source), platform)
    res = PollResult(entries=len(rows) + len(bad), rejected=list(bad))
    pos = [r.pop("_pos") for r in rows]
    frame = pd.DataFrame(rows, columns=list(_FIELDS), index=pos)
    good, refused = validate_posts(frame)
    res.rejected += refused
    for name, why in res.rejected:
        log.warning("opinion feed %s: entry %s refused: %s", source, name, why)
    store.ensure_layer(POSTS)
    seen = stored_ids(store, POSTS, list(good["post_id"]))
    fresh = good[~good["post_id"].isin(list(seen))]
    fresh = fresh.sort_values(["posted_at", "post_id"], kind="stable").reset_index(drop=True)
    res.new = len(fresh)
    pause = PAUSE
    stamp = (now or dt.datetime.now(dt.UTC)).isoformat()
    n_batches = max(1, -(-len(fresh) // batch))
    for k in range(n_batches):
        part = fresh.iloc[k * batch : (k + 1) * batch]
        last = k == n_batches - 1
        point = None
        if last:
            point = (f"source:{source}", json.dumps({"polled_at": stamp, "entries": res.entries}))
        r = ingest(store, part, gazetteer, cases=cases, now=now, checkpoint=point, pause=pause)
        res.batches.append(r)
    log.info(
        "opinion feed %s: %d entries, %d new, %d stored, %d refused, %d case(s) opened",
        source, res.entries, res.new, res.stored, len(res.rejected), len(res.cases),
    )  # fmt: skip
    return res


def run(
    store: Store,
    source: str,
    *,
    every: dt.timedelta = DEFAULT_EVERY,
    once: bool = False,
    **kw,
) -> PollResult:
    """Poll ``source`` every ``every`` (or once); a failed poll is logged and retried later."""
    gazetteer = gazetteer_of(store)
    while True:
        started = time.monotonic()
        try:
            res = poll_once(store, source, gazetteer=gazetteer, **kw)
        except (OSError, InvalidParameter) as e:
            if once:
                raise
            log.error("opinion feed %s: poll failed: %s (next in %s)", source, e, every)
            res = None
        if once and res is not None:
            return res
        time.sleep(max(0.0, every.total_seconds() - (time.monotonic() - started)))


#: The sample's posts: the last weeks of the sample year (the year's density of posts).
SAMPLE_WEEKS = 12


def ingest_sample(store: Store, seed: int, weeks: int = SAMPLE_WEEKS) -> IngestResult:
    """Generate the sample's posts (:func:`geodata.opinion.generate_posts`) and ingest them.

    The last ``weeks`` of the sample year at the year's rate (about 580 posts a week), in
    one transaction, as ingested at the end of the sample year (deterministic); topics open
    no cases (the sample's incidents already hold their ``public_opinion`` cases, and their
    planted patterns stay as they are). Each post gets a synthetic author id, profile and
    source URL (``.example`` hosts), and topics of 3 posts or more that went quiet a week
    before the end get a closing reply (as the duty officer records them).
    """
    import hashlib

    from analytics.opinion.ingest import TOPICS, reply_topic
    from geodata.opinion import POSTS_PER_YEAR, generate_posts
    from geodata.sample import YEAR_END, YEAR_START
    from layers.access import Principal

    frames = {lid: store.read_frame(LAYERS[lid]) for lid in GAZETTEER_LAYERS}
    start = YEAR_END - dt.timedelta(days=7 * weeks - 1)
    days = (YEAR_END - YEAR_START).days + 1
    n = round(POSTS_PER_YEAR * 7 * weeks / days)
    posts = generate_posts(frames, seed=seed, n_posts=n, start=start, end=YEAR_END)
    # a topic's follow-ups may run a day or two past the period: the sample year ends there
    local = posts["posted_at"].dt.tz_convert("Asia/Shanghai").dt.date
    posts = posts.loc[local <= YEAR_END, [c for c in posts.columns if not c.startswith("true_")]]
    host = {"weibo": "weibo.example", "forum": "bbs.example", "wechat": "mp.example"}
    posts = posts.assign(
        author_id=[f"U{hashlib.sha1(str(h).encode()).hexdigest()[:10]}" for h in posts["handle"]],
    )
    posts = posts.assign(
        profile_url=[
            f"https://{host[p]}/u/{a}"
            for p, a in zip(posts["platform"], posts["author_id"], strict=True)
        ],
        source_url=[
            f"https://{host[p]}/p/{i}"
            for p, i in zip(posts["platform"], posts["post_id"], strict=True)
        ],
    )
    end = dt.datetime.combine(YEAR_END + dt.timedelta(days=1), dt.time(0), dt.UTC) - dt.timedelta(
        hours=8
    )
    made = ingest(store, posts, build_gazetteer(frames), cases=None, now=end)
    officer = Principal("舆情值班员 王某", "dispatcher")
    topics = store.read_frame(TOPICS)
    quiet = topics[(topics["posts"] >= 3) & (topics["last_at"] < end - dt.timedelta(days=7))]
    for tid, last in zip(quiet["topic_id"], quiet["last_at"], strict=True):
        when = (pd.Timestamp(last) + pd.Timedelta(days=1)).to_pydatetime()
        note = "已转属地和责任部门核实处理，处理结果已在原帖下回复网民。"
        reply_topic(store, tid, note, officer, status="closed", now=when)
    return made
