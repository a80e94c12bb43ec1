"""Gemini building blocks as tables: detection rules, chunk plans and joins, reply
validation, prompt versions, keys, and the shared rate limit (in memory and in Redis)."""

from __future__ import annotations

import threading
import time

import pytest

from config import Config
from pipeline.errors import PermanentError, TransientError
from pipeline.gemini import chunking
from pipeline.gemini.chunking import Chunk, join, merge, plan_chunks
from pipeline.gemini.detection import KeepList, Thresholds, detect, translation_flags
from pipeline.gemini.keys import KeyRing, mask, scrub
from pipeline.gemini.prompt import (
    Glossary,
    prompt_version,
    repair_request,
    system_instruction,
    transcribe_request,
)
from pipeline.gemini.ratelimit import MemoryStore, RateLimiter, RedisStore
from pipeline.gemini.schema import BadReply, TranscriptReply, parse_reply

from .conftest import REDIS_URL

T = Thresholds()
KEEP = KeepList(["ok", "video", "check in"])


@pytest.mark.parametrize(
    "text,translation,flags",
    [
        ("Anh ấy đang đi meeting với khách hàng.", "Anh ấy đang đi họp với khách hàng.", []),
        (
            "Anh ấy đang đi meeting với khách hàng.",
            "Anh ấy đang đi meeting với khách hàng.",
            ["english_untranslated: meeting"],
        ),
        (
            "Deadline của project là thứ sáu.",
            "Deadline của project là thứ sáu.",
            ["english_untranslated: deadline, project"],
        ),
        ("Let's check the report before lunch.", "", ["empty_translation"]),
        ("Let's check the report before lunch.", "  … ", ["empty_translation"]),
        ("…", "", []),  # nothing said, nothing to translate
        # Names, acronyms, the keep list and multi-word kept terms are not English to fix.
        ("Em đặt trên Shopee rồi.", "Em đặt trên Shopee rồi.", []),
        ("Anh ấy là CEO của công ty.", "Anh ấy là CEO của công ty.", []),
        ("Ok, xem video này đi.", "Ok, xem video này đi.", []),
        ("Mình check in ở sân bay.", "Mình check in ở sân bay.", []),
        (
            "Team mình họp nha.",
            "Nhóm mình họp nha, rồi sau đó cả nhóm cùng nhau đi ăn trưa ở quán quen gần công ty.",
            ["length_ratio: 4.6"],
        ),
        (
            "Hôm nay mình sẽ review cái laptop này, performance khá ổn.",
            "Hôm nay tốt.",
            ["length_ratio: 0.21"],
        ),
        (
            "Cái này hay lắm nha mấy bạn.",
            "Cái này hay. Thật đấy. Rất hay. Nhé.",
            ["sentence_count: 1→4"],
        ),
    ],
)
def test_translation_rules(text, translation, flags):
    assert translation_flags(text, translation, KEEP, T) == flags


@pytest.mark.parametrize(
    "times,duration,flags",
    [
        ([(0.0, 2.0), (2.1, 4.0)], 5.0, [[], []]),
        ([(0.0, 2.0), (1.9, 4.0)], 5.0, [[], []]),  # within the overlap tolerance
        ([(0.0, 2.0), (1.0, 4.0)], 5.0, [[], ["overlap"]]),
        ([(3.0, 4.0), (1.0, 2.0)], 5.0, [[], ["out_of_order"]]),
        ([(2.0, 1.0)], 5.0, [["inverted_times"]]),
        ([(-1.0, 1.0)], 5.0, [["before_start"]]),
        ([(4.0, 5.4)], 5.0, [[]]),  # within the end tolerance
        ([(4.0, 6.0)], 5.0, [["beyond_end"]]),
    ],
)
def test_timestamp_rules(times, duration, flags):
    rows = [
        {"start": s, "end": e, "text": "Xin chào.", "translation": "Xin chào."} for s, e in times
    ]
    assert [row["flags"] for row in detect(rows, duration, KEEP, T)] == flags


def test_thresholds_come_from_config():
    settings = {name: getattr(Config, name) for name in dir(Config) if name.startswith("GEMINI_")}
    settings.update(GEMINI_FLAG_LENGTH_RATIO_MAX=5.0, GEMINI_FLAG_ENGLISH_MIN_WORDS=2)
    relaxed = Thresholds.from_config(settings)
    long = "Nhóm mình họp nha, rồi sau đó cả nhóm cùng nhau đi ăn trưa ở quán quen gần công ty."
    assert translation_flags("Team mình họp nha.", long, KEEP, T) == ["length_ratio: 4.6"]
    assert translation_flags("Team mình họp nha.", long, KEEP, relaxed) == []
    assert translation_flags("Đi meeting.", "Đi meeting.", KEEP, relaxed) == []
    keep = KeepList.from_config(settings, ["meeting"])
    assert translation_flags("Đi meeting.", "Đi meeting.", keep, T) == []


@pytest.mark.parametrize(
    "duration,max_s,overlap,expected",
    [
        (100.0, 120.0, 10.0, [(0.0, 100.0)]),
        (50.0, 20.0, 6.0, [(0.0, 17.0), (11.0, 28.0), (22.0, 39.0), (33.0, 50.0)]),
        (3600.0, 1620.0, 30.0, [(0.0, 1220.0), (1190.0, 2410.0), (2380.0, 3600.0)]),
    ],
)
def test_chunk_plan(duration, max_s, overlap, expected):
    chunks = plan_chunks(duration, max_s, overlap)
    assert [(c.start, c.end) for c in chunks] == expected
    assert all(c.duration <= max_s for c in chunks)


def row(start, end, text):
    return {"start": start, "end": end, "text": text, "translation": text, "flags": []}


@pytest.mark.parametrize(
    "earlier,later,expected",
    [
        # Both chunks heard the sentence across the cut (14): it is kept once; the
        # earlier chunk's cut-off last sentence and the later one's first are dropped.
        (
            [row(9, 12, "một hai ba"), row(12.5, 15.5, "bốn năm sáu bảy"), row(16, 17, "tám")],
            [
                row(11, 11.8, "ba"),
                row(12.7, 15.6, "bốn năm sáu bảy"),
                row(16.1, 19, "tám chín mười"),
            ],
            ["một hai ba", "bốn năm sáu bảy", "tám chín mười"],
        ),
        # The chunks read the straddling sentence a bit differently: still one copy.
        (
            [row(12.5, 15.5, "review cái laptop này"), row(16, 17, "ok")],
            [row(12.6, 15.4, "ri viu cái laptop này"), row(16, 18, "ok nha")],
            ["review cái laptop này", "ok nha"],
        ),
        # Silence over the cut: split by time.
        (
            [row(9, 12, "một hai ba"), row(16, 17, "bốn")],
            [row(11.2, 12, "ba"), row(16.2, 18, "bốn năm")],
            ["một hai ba", "bốn năm"],
        ),
        # No matching words at all around the cut: split at the cut, no time repeated.
        (
            [row(12, 15, "xin chào"), row(15.5, 17, "các")],
            [row(12.1, 15.2, "hello"), row(15.4, 18, "các bạn")],
            ["xin chào", "các bạn"],
        ),
    ],
)
def test_joining_two_chunks_keeps_every_sentence_once(earlier, later, expected):
    assert [r["text"] for r in join(earlier, later, 11.0, 17.0)] == expected


def test_backchannels_in_the_overlap_are_no_anchor_and_times_stay_in_order():
    """Vietnamese conversation is full of one-word answers ("dạ", "ừ đúng rồi", "dạ"): two
    alike ones say nothing about where the chunks meet. Overlap 1596–1610, cut at 1603."""
    earlier = [
        row(1590.0, 1595.5, "chị thấy cái plan này ổn không em"),
        row(1600.0, 1600.4, "dạ"),
        row(1601.0, 1602.0, "ừ đúng rồi"),
        row(1603.05, 1603.4, "dạ"),
        row(1604.0, 1606.0, "anh nói tiếp"),
    ]
    later = [
        row(1600.1, 1600.5, "dạ"),
        row(1601.1, 1602.0, "ừ đúng rồi"),
        row(1603.1, 1603.5, "dạ"),
        row(1604.0, 1606.2, "anh nói tiếp đi"),
        row(1606.5, 1609.0, "rồi mình chốt deadline nha"),
    ]
    joined = join(earlier, later, 1596.0, 1610.0)
    assert [r["text"] for r in joined] == [
        "chị thấy cái plan này ổn không em",
        "dạ",
        "ừ đúng rồi",
        "dạ",
        "anh nói tiếp đi",
        "rồi mình chốt deadline nha",
    ]
    starts = [r["start"] for r in joined]
    assert starts == sorted(starts)


@pytest.mark.parametrize("seed", range(20))
def test_joined_times_never_go_backwards(seed):
    """Whatever two chunks say about their overlap, the joined sentences keep their order."""
    import random

    rng = random.Random(seed)
    words = ["dạ", "ừ", "vâng", "đúng rồi", "anh nói tiếp", "deadline thứ sáu nha", "okay em"]

    def chunk(t0, t1):
        rows, t = [], t0
        while t < t1:
            length = rng.uniform(0.3, 3.0)
            rows.append(row(round(t, 2), round(t + length, 2), rng.choice(words)))
            t += length + rng.uniform(0.0, 0.8)
        return rows

    joined = join(chunk(1580, 1610), chunk(1596, 1630), 1596.0, 1610.0)
    starts = [r["start"] for r in joined]
    assert starts == sorted(starts)


def test_merge_and_shift_put_chunks_on_the_recordings_clock():
    chunks = plan_chunks(50.0, 20.0, 6.0)
    results = [
        chunking.shift([row(1, 3, "a b"), row(13, 16, "c d e")], 0.0),
        chunking.shift([row(2, 5, "c d e"), row(8, 10, "f")], 11.0),
        chunking.shift([row(0, 1, "f")], 22.0),
        chunking.shift([], 33.0),
    ]
    merged = merge(chunks, results)
    assert [(r["start"], r["text"]) for r in merged] == [(1, "a b"), (13, "c d e"), (19, "f")]
    assert merge([Chunk(0, 0, 5)], [[row(1, 2, "x")]])[0]["text"] == "x"


def test_reply_validation():
    good = parse_reply(
        '{"sentences": [{"start": 0, "end": 1.5, "text": "Xin chào", "translation": "Xin chào"}]}',
        TranscriptReply,
    )
    assert good.sentences[0].end == 1.5
    with pytest.raises(BadReply, match="not JSON") as not_json:
        parse_reply("Here is your transcript: ...", TranscriptReply)
    assert not_json.value.code == "not_json"
    with pytest.raises(BadReply, match=r"schema \(sentences.0.start") as mismatch:
        parse_reply('{"sentences": [{"start": "soon", "text": "x"}]}', TranscriptReply)
    assert mismatch.value.code == "schema_mismatch"


def test_prompt_holds_examples_and_glossary_and_its_version_follows_the_terms():
    plain = Glossary()
    terms = Glossary(vocabulary=(("Shopee", None),), keep_english=("deadline",))
    assert prompt_version(plain) == "v1"
    assert prompt_version(terms).startswith("v1+lex:") and len(prompt_version(terms)) == 15
    assert prompt_version(terms) != prompt_version(Glossary(keep_english=("deadline",)))
    text = system_instruction(terms)
    assert "ri viu" in text and "Deadline của project" in text  # few-shot examples
    assert "- Shopee" in text and "- deadline" in text
    assert "Glossary" not in system_instruction(plain)
    assert "part 2 of 3" in transcribe_request(1200.0, 2, 3)
    rows = [row(i, i + 1, f"câu {i}") for i in range(10)]
    request = repair_request(rows, [5], context=2)
    assert '"index": 3' in request and '"index": 7' in request and '"index": 8' not in request


def test_keys_are_masked_and_rest_in_the_shared_store():
    assert mask("AIzaSyA-very-secret-1234") == "…1234" and mask("short") == "…"
    store = MemoryStore()
    ring = KeyRing(["AIzaSyA-very-secret-1111", "AIzaSyA-very-secret-2222"], store, 60)
    first, second = ring.keys
    assert "secret" not in repr(first) and scrub(f"bad {first.secret}", ring.keys) == "bad …1111"
    assert ring.available() is first
    ring.rest_after_quota(first, 5)
    assert ring.available() is second and ring.state(first).startswith("quota")
    ring.refuse(second, "API key not valid")
    with pytest.raises(TransientError, match="out of quota"):
        ring.available()
    ring.refuse(first, "API key not valid")
    with pytest.raises(PermanentError, match="every Gemini API key was refused"):
        ring.available()
    with pytest.raises(PermanentError, match="GEMINI_API_KEY_1"):
        KeyRing([], store).available()


def hammer(limiters, n_each: int) -> list[float]:
    stamps, lock = [], threading.Lock()

    def work(limiter):
        for _ in range(n_each):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=work, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(stamps)


def most_in_any_window(stamps: list[float], window: float) -> int:
    """The most requests seen in any window (less a margin for threads that note their
    time a little late on a busy machine)."""
    return max(sum(1 for s in stamps if t <= s < t + window - 0.1) for t in stamps)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_rate_limit_holds_every_worker_together(backend):
    if backend == "redis":
        import redis

        redis.Redis.from_url(REDIS_URL).delete("ra:gemini:test-rpm")
        # Two stores, as two worker processes would have, on one Redis.
        limiters = [
            RateLimiter(RedisStore(REDIS_URL), 3, window_s=0.5, name="test-rpm") for _ in range(3)
        ]
    else:
        store = MemoryStore()
        limiters = [RateLimiter(store, 3, window_s=0.5, name="test-rpm") for _ in range(3)]
    started = time.monotonic()
    stamps = hammer(limiters, 3)
    assert len(stamps) == 9
    assert most_in_any_window(stamps, 0.5) <= 3
    assert time.monotonic() - started >= 1.0  # three windows for nine requests


def test_rate_limit_gives_up_past_its_patience():
    store = MemoryStore()
    limiter = RateLimiter(store, 1, window_s=30, max_wait_s=0.1)
    limiter.acquire()
    with pytest.raises(TransientError, match="rate limit"):
        limiter.acquire()


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_each_key_has_its_own_limit_and_the_next_takes_over_when_one_is_full(backend):
    if backend == "redis":
        import redis

        for name in ("ra:gemini:test-keys:a", "ra:gemini:test-keys:b"):
            redis.Redis.from_url(REDIS_URL).delete(name)
        store = RedisStore(REDIS_URL)
    else:
        store = MemoryStore()
    limiter = RateLimiter(store, 2, window_s=30, max_wait_s=0.1, name="test-keys")
    chosen = [limiter.acquire_any(["a", "b"]) for _ in range(4)]
    assert chosen == [(0, 0.0), (0, 0.0), (1, 0.0), (1, 0.0)]
    with pytest.raises(TransientError, match="for each of 2 key"):
        limiter.acquire_any(["a", "b"])
