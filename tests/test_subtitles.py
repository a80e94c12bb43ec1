"""Tests for pipeline.subtitles: parsing, rolling-caption dedupe, sentence cutting."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from pipeline.cue_sentences import Cue, cues_to_sentences
from pipeline.subtitles import SubtitleError, dedupe_rolling, load_subtitle_file, parse_subtitles

DATA = Path(__file__).parent / "data" / "subtitles"


def _read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8-sig")


def _triples(sentences):
    return [(s["start"], s["end"], s["text"]) for s in sentences]


# Deduplicated YouTube word sequence, cue by cue, with the time of the cue where each
# line first appeared.
YT_DEDUPED = [
    (0.16, 2.31, "xin chào các bạn"),
    (2.32, 5.03, "hôm nay mình sẽ review cái laptop này"),
    (5.04, 7.55, "nói chung là performance khá ổn"),
    (8.6, 11.2, "pin thì dùng được khoảng tám tiếng"),
    (11.21, 14.0, "nhưng mà cái fan hơi ồn khi mình chơi game"),
    (14.8, 16.3, "okay let's go"),
]
YT_WORDS = " ".join(text for _, _, text in YT_DEDUPED).split()

FIXTURE_SENTENCES = {
    "yt_auto_vi.vtt": [
        # No punctuation: cut at the 1.05 s and 0.8 s pauses, not at the 10 ms ones.
        (
            0.16,
            7.55,
            "xin chào các bạn hôm nay mình sẽ review cái laptop này "
            "nói chung là performance khá ổn",
        ),
        (
            8.6,
            14.0,
            "pin thì dùng được khoảng tám tiếng nhưng mà cái fan hơi ồn khi mình chơi game",
        ),
        (14.8, 16.3, "okay let's go"),
    ],
    "manual_vi_en.srt": [
        # "!" after 15 of 54 characters in a 1.0–3.5 s cue: 1 + 2.5 * 15 / 54.
        (1.0, 1.694, "Chào mọi người!"),
        (1.694, 3.5, "Hôm nay mình đi shopping ở Vincom nhé."),
        (4.0, 7.0, "Deal này hời quá, mua 1 tặng 1 luôn."),
        # Straddles cues 3 and 4; "." after 24 of 41 characters of 9.0–12.0 s.
        (7.5, 10.756, "Tom & Jerry là phim hoạt hình mình thích nhất hồi nhỏ."),
        (10.756, 12.0, "Còn bạn thì sao?"),
        # "…" followed by a lowercase word trails off; it does not end the sentence.
        (13.0, 15.0, "Hmm… để mình nghĩ đã."),
    ],
    "manual_en.vtt": [
        (1.0, 2.75, "Welcome back to the channel."),
        (2.75, 6.5, "Today we're testing the new noise-cancelling headphones."),
        (7.0, 9.0, "Do they work on the bus?"),
        (62.0, 62.875, "Honestly?"),
        (62.875, 65.5, "They're great — and cheap."),
    ],
}


# ------------------------------------------------------------------ fixture files


@pytest.mark.parametrize(
    ("name", "expected"), FIXTURE_SENTENCES.items(), ids=list(FIXTURE_SENTENCES)
)
def test_fixture_sentences(name, expected):
    assert _triples(load_subtitle_file(DATA / name)) == expected


@pytest.mark.parametrize("name", list(FIXTURE_SENTENCES))
def test_fixture_times_monotonic_and_text_clean(name):
    sentences = load_subtitle_file(DATA / name)
    assert sentences
    previous_end = 0.0
    for s in sentences:
        assert previous_end <= s["start"] < s["end"]
        assert s["start"] == round(s["start"], 3) and s["end"] == round(s["end"], 3)
        assert s["text"] and s["text"] == " ".join(s["text"].split())
        assert unicodedata.is_normalized("NFC", s["text"])
        assert "<" not in s["text"] and "&" not in s["text"].replace(" & ", "")
        previous_end = s["end"]


def test_manual_en_vtt_cues():
    """NOTE / STYLE / REGION blocks, cue ids and hours-less stamps are handled."""
    cues = parse_subtitles(_read("manual_en.vtt"))
    assert cues == [
        Cue(1.0, 4.0, "Welcome back to the channel. Today we're testing"),
        Cue(4.0, 6.5, "the new noise-cancelling headphones."),
        Cue(7.0, 9.0, "Do they work on the bus?"),
        Cue(62.0, 65.5, "Honestly? They're great — and cheap."),
    ]


def test_manual_srt_cues():
    cues = parse_subtitles(_read("manual_vi_en.srt"))
    assert [c.text for c in cues] == [
        "Chào mọi người! Hôm nay mình đi shopping ở Vincom nhé.",
        "Deal này hời quá, mua 1 tặng 1 luôn.",  # two lines joined with a space
        "Tom & Jerry là phim hoạt hình",
        "mình thích nhất hồi nhỏ. Còn bạn thì sao?",
        "Hmm… để mình nghĩ đã.",
    ]
    assert [(c.start, c.end) for c in cues][:2] == [(1.0, 3.5), (4.0, 7.0)]


def test_malformed_fixture_names_file_and_line():
    with pytest.raises(SubtitleError, match=r"malformed\.srt: line 6: malformed timestamp"):
        load_subtitle_file(DATA / "malformed.srt")


# ---------------------------------------------------------------- rolling captions


def test_youtube_raw_cues_repeat_words():
    """Sanity check on the fixture: without dedupe the text is repeated."""
    cues = parse_subtitles(_read("yt_auto_vi.vtt"))
    assert len(cues) == 11
    raw_words = " ".join(c.text for c in cues).split()
    assert len(raw_words) > 2 * len(YT_WORDS)


def test_rolling_dedupe_keeps_each_word_once_in_order():
    deduped = dedupe_rolling(parse_subtitles(_read("yt_auto_vi.vtt")))
    assert [(c.start, c.end, c.text) for c in deduped] == YT_DEDUPED
    assert " ".join(c.text for c in deduped).split() == YT_WORDS


def test_rolling_dedupe_is_idempotent():
    once = dedupe_rolling(parse_subtitles(_read("yt_auto_vi.vtt")))
    assert dedupe_rolling(once) == once


def test_rolling_dedupe_keeps_repeated_word_at_line_start():
    """A new line that starts with the word the previous one ended on is not a repeat."""
    text = (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:02.000 align:start position:0%\n \n"
        "mình<00:00:00.500><c> nói</c><00:00:01.000><c> là</c>\n\n"
        "00:00:02.000 --> 00:00:02.010 align:start position:0%\nmình nói là\n \n\n"
        "00:00:02.010 --> 00:00:04.000 align:start position:0%\nmình nói là\n"
        "là<00:00:02.500><c> không</c>\n\n"
        "00:00:04.000 --> 00:00:04.010 align:start position:0%\nlà không\n \n"
    )
    deduped = dedupe_rolling(parse_subtitles(text))
    assert [(c.start, c.end, c.text) for c in deduped] == [
        (0.0, 2.0, "mình nói là"),
        (2.01, 4.0, "là không"),
    ]


def test_rolling_dedupe_without_line_info_uses_word_overlap():
    cues = [
        Cue(0.0, 2.0, "hello everyone"),
        Cue(2.0, 2.01, "hello everyone"),
        Cue(2.01, 4.0, "hello everyone welcome to"),
        Cue(4.0, 4.01, "welcome to"),
        Cue(4.01, 6.0, "welcome to my channel"),
    ]
    assert dedupe_rolling(cues) == [
        Cue(0.0, 2.0, "hello everyone"),
        Cue(2.01, 4.0, "welcome to"),
        Cue(4.01, 6.0, "my channel"),
    ]


@pytest.mark.parametrize("name", ["manual_vi_en.srt", "manual_en.vtt"])
def test_dedupe_leaves_manual_subtitles_unchanged(name):
    cues = parse_subtitles(_read(name))
    assert dedupe_rolling(cues) == cues


def test_dedupe_keeps_lines_said_twice_in_manual_subtitles():
    cues = [
        Cue(0.0, 1.0, "Không."),
        Cue(1.2, 2.0, "Không."),
        Cue(2.5, 4.0, "Thật à? Mình tưởng bạn thích."),
        Cue(4.5, 6.0, "Không thích lắm."),
    ]
    assert dedupe_rolling(cues) == cues


@pytest.mark.parametrize("cues", [[], [Cue(0.0, 1.0, "một")]])
def test_dedupe_trivial_inputs(cues):
    assert dedupe_rolling(cues) == cues


# ----------------------------------------------------------------- text cleaning

NFC_TEXT = "Hôm nay mình đi shopping ở Vincom nhé"


@pytest.mark.parametrize(
    "template",
    [
        "1\n00:00:01,000 --> 00:00:03,000\n{}\n",
        "WEBVTT\n\n00:01.000 --> 00:03.000\n{}\n",
    ],
    ids=["srt", "vtt"],
)
def test_nfd_input_comes_out_nfc(template):
    nfd = unicodedata.normalize("NFD", NFC_TEXT)
    assert nfd != NFC_TEXT  # the input really is decomposed
    cues = parse_subtitles(template.format(nfd))
    sentences = cues_to_sentences(cues)
    assert cues[0].text == NFC_TEXT
    assert [s["text"] for s in sentences] == [NFC_TEXT]
    assert sentences[0]["text"].encode("utf-8") == NFC_TEXT.encode("utf-8")


def test_cues_to_sentences_normalises_hand_built_cues():
    nfd = unicodedata.normalize("NFD", "Tiếng   Việt  có dấu.")
    assert _triples(cues_to_sentences([Cue(0.0, 1.0, nfd)])) == [(0.0, 1.0, "Tiếng Việt có dấu.")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("<i>Deal</i> <b>hời</b> <u>quá</u>", "Deal hời quá"),
        ("xin<00:00:00.480><c> chào</c><00:00:00.960><c> các</c>", "xin chào các"),
        (
            "<c.colorE5E5E5>nói chung là</c><c.colorCCCCCC> performance</c>",
            "nói chung là performance",
        ),
        ("<v Minh Anh>Chào bạn</v>", "Chào bạn"),
        ('<font color="#ffffff" size="24">Vincom</font>', "Vincom"),
        ("{\\an8}Ở trên màn hình", "Ở trên màn hình"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("a&nbsp;b&nbsp;&nbsp;c", "a b c"),
        ("&lt;i&gt; là thẻ HTML", "<i> là thẻ HTML"),
        ("5 &lt; 7 &gt; 3 &quot;ok&quot; &#39;ok&#39; &hellip;", "5 < 7 > 3 \"ok\" 'ok' …"),
        ("nếu a < b thì", "nếu a < b thì"),
        ("  nhiều    khoảng\ttrắng  ", "nhiều khoảng trắng"),
        ("zero\u200bwidth", "zerowidth"),
    ],
)
def test_inline_markup_and_entities(line, expected):
    cues = parse_subtitles(f"WEBVTT\n\n00:00.000 --> 00:01.000\n{line}\n")
    assert [c.text for c in cues] == [expected]


# -------------------------------------------------------------- parsing details


@pytest.mark.parametrize(
    ("stamp_line", "start", "end"),
    [
        ("00:01.000 --> 00:02.500", 1.0, 2.5),
        ("00:00:01.000 --> 00:00:02.500", 1.0, 2.5),
        ("01:02:03.045 --> 01:02:04.000", 3723.045, 3724.0),
        ("00:00:01,000 --> 00:00:02,500", 1.0, 2.5),  # SRT comma inside a VTT file
        ("00:01.000 --> 00:02.500 align:start position:0%", 1.0, 2.5),
        ("00:01.000 --> 00:02.500 line:90% align:center size:50%", 1.0, 2.5),
        ("00:01.000-->00:02.500", 1.0, 2.5),
        ("00:01.5 --> 00:02.25", 1.5, 2.25),
    ],
)
def test_timestamp_forms(stamp_line, start, end):
    (cue,) = parse_subtitles(f"WEBVTT\n\n{stamp_line}\nxin chào\n")
    assert (cue.start, cue.end, cue.text) == (start, end, "xin chào")


def test_srt_with_bom_crlf_and_multiline():
    text = (
        "\ufeff1\r\n00:00:01,000 --> 00:00:02,000\r\nDòng một\r\ndòng hai\r\n\r\n"
        "2\r\n00:00:02,500 --> 00:00:04,000\r\n2024\r\n\r\n"
    )
    cues = parse_subtitles(text)
    assert cues == [Cue(1.0, 2.0, "Dòng một dòng hai"), Cue(2.5, 4.0, "2024")]


def test_empty_cues_are_dropped():
    text = (
        "1\n00:00:01,000 --> 00:00:02,000\n<i></i>\n\n"
        "2\n00:00:02,000 --> 00:00:03,000\n\n"
        "3\n00:00:03,000 --> 00:00:04,000\nCòn lại.\n"
    )
    assert parse_subtitles(text) == [Cue(3.0, 4.0, "Còn lại.")]


def test_note_is_only_a_comment_at_block_start():
    text = (
        "WEBVTT\nKind: captions\n\nNOTE a comment\n--\n\n"
        "00:01.000 --> 00:02.000\nNOTE this is dialogue\n"
    )
    assert [c.text for c in parse_subtitles(text)] == ["NOTE this is dialogue"]


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("WEBVTT\n\nNOTE x\n\n00:01.000 --> 00:02.000\nmột\n", None, "một"),
        ("1\n00:00:01,000 --> 00:00:02,000\nhai\n", None, "hai"),
        ("1\n00:00:01,000 --> 00:00:02,000\nba\n", "srt", "ba"),
        ("00:01.000 --> 00:02.000\nbốn\n", "vtt", "bốn"),  # headerless .vtt
        ("WEBVTT\n\n00:01.000 --> 00:02.000\nnăm\n", ".VTT", "năm"),
    ],
)
def test_format_detection(text, fmt, expected):
    assert [c.text for c in parse_subtitles(text, fmt)] == [expected]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\n00:00:01,000 --> 00:00:0x,000\nhi\n", r"line 2: malformed timestamp"),
        ("WEBVTT\n\n00:00.000 --> 00:61.000\nhi\n", r"line 3: malformed timestamp '00:61.000'"),
        ("1\n00:00:01,000 -> 00:00:02,000\nhi\n", r"line 2: malformed cue timing"),
        ("1\n00:00:05,000 --> 00:00:04,000\nhi\n", r"line 2: cue ends before it starts"),
        (
            "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> 3\nhi\n",
            r"line 6: malformed timestamp '3'",
        ),
        ("Xin chào\n\n1\n00:00:01,000 --> 00:00:02,000\nhi\n", r"line 1: expected a cue"),
        ("", r"no subtitle cues"),
        ("WEBVTT\n\nNOTE only a comment\n", r"no subtitle cues"),
        ("1\n00:00:01,000 --> 00:00:02,000\n<i> </i>\n", r"no subtitle cues"),
    ],
)
def test_malformed_input_raises(text, message):
    with pytest.raises(SubtitleError, match=message):
        parse_subtitles(text)


def test_subtitle_error_is_value_error_and_unknown_format():
    with pytest.raises(ValueError, match="unknown subtitle format 'ass'"):
        parse_subtitles("1\n00:00:01,000 --> 00:00:02,000\nhi\n", "ass")


# ------------------------------------------------------------- sentence cutting


@pytest.mark.parametrize(
    ("cues", "expected"),
    [
        # Sentence ends mid-cue: "aaaa." is 5 of 10 characters.
        ([Cue(0.0, 10.0, "aaaa. bbbb")], [(0.0, 5.0, "aaaa."), (5.0, 10.0, "bbbb")]),
        # Straddles two cues; "three." is 6 of 16 characters of 2–6 s.
        (
            [Cue(0.0, 2.0, "one two"), Cue(2.0, 6.0, "three. four five")],
            [(0.0, 3.5, "one two three."), (3.5, 6.0, "four five")],
        ),
        # Several ends inside one cue.
        (
            [Cue(0.0, 3.0, "Ừ. Ok! Đi?")],
            [(0.0, 0.6, "Ừ."), (0.6, 1.8, "Ok!"), (1.8, 3.0, "Đi?")],
        ),
        # Full-width marks end a sentence even without a following space.
        ([Cue(0.0, 1.0, "Xong。Tiếp")], [(0.0, 0.556, "Xong。"), (0.556, 1.0, "Tiếp")]),
    ],
    ids=["mid-cue", "straddling", "several", "full-width"],
)
def test_interpolated_sentence_ends(cues, expected):
    assert _triples(cues_to_sentences(cues)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith đến lúc 3.5 giờ. Xong.", ["Dr. Smith đến lúc 3.5 giờ.", "Xong."]),
        ("Mình ở TP. Hồ Chí Minh. Còn bạn?", ["Mình ở TP. Hồ Chí Minh.", "Còn bạn?"]),
        ("Phiên bản v1.2 ổn. Ok", ["Phiên bản v1.2 ổn.", "Ok"]),
        ("Thật hả?! Trời ơi...", ["Thật hả?!", "Trời ơi..."]),
        ('Anh nói "đi thôi." Rồi đi.', ['Anh nói "đi thôi."', "Rồi đi."]),
        ("Ờ... thì mình nghĩ vậy. Ừ.", ["Ờ... thì mình nghĩ vậy.", "Ừ."]),
        ("Đợi chút… Xong rồi.", ["Đợi chút…", "Xong rồi."]),
    ],
)
def test_sentence_end_detection(text, expected):
    assert [s["text"] for s in cues_to_sentences([Cue(0.0, 10.0, text)])] == expected


@pytest.mark.parametrize(
    ("next_start", "n_sentences"),
    [(1.7, 1), (2.29, 1), (2.3, 2), (3.0, 2)],  # gap 0, 0.59, 0.6 (float-fuzzy), 1.3
)
def test_unpunctuated_text_is_cut_at_pauses(next_start, n_sentences):
    cues = [Cue(0.0, 1.7, "hôm nay mình"), Cue(next_start, next_start + 1.0, "đi học")]
    sentences = cues_to_sentences(cues)
    assert len(sentences) == n_sentences
    assert " ".join(s["text"] for s in sentences) == "hôm nay mình đi học"
    if n_sentences == 2:
        assert _triples(sentences) == [
            (0.0, 1.7, "hôm nay mình"),
            (next_start, round(next_start + 1.0, 3), "đi học"),
        ]


def test_pause_threshold_is_configurable():
    cues = [Cue(0.0, 1.0, "một hai"), Cue(1.3, 2.0, "ba bốn")]
    assert len(cues_to_sentences(cues)) == 1
    assert len(cues_to_sentences(cues, pause_s=0.3)) == 2


def test_punctuated_text_ignores_pauses():
    cues = [
        Cue(0.0, 2.0, "Hôm nay mình đi"),
        Cue(4.0, 6.0, "shopping ở Vincom nhé."),
        Cue(6.0, 7.0, "Vui lắm!"),
    ]
    assert _triples(cues_to_sentences(cues)) == [
        (0.0, 6.0, "Hôm nay mình đi shopping ở Vincom nhé."),
        (6.0, 7.0, "Vui lắm!"),
    ]


def test_long_unpunctuated_run_is_cut_at_cue_boundaries():
    cues = [Cue(10.0 * i, 10.0 * (i + 1), f"đoạn {i}") for i in range(5)]
    assert _triples(cues_to_sentences(cues, max_sentence_s=30.0)) == [
        (0.0, 30.0, "đoạn 0 đoạn 1 đoạn 2"),
        (30.0, 50.0, "đoạn 3 đoạn 4"),
    ]
    assert len(cues_to_sentences(cues, max_sentence_s=10.0)) == 5


def test_single_cue_longer_than_max_stays_whole():
    assert _triples(cues_to_sentences([Cue(0.0, 45.0, "một cue rất dài")])) == [
        (0.0, 45.0, "một cue rất dài")
    ]


def test_punctuation_only_fragments_attach_to_a_neighbour():
    cues = [Cue(0.0, 1.0, "Xong rồi."), Cue(2.0, 3.0, "...")]
    assert _triples(cues_to_sentences(cues)) == [(0.0, 3.0, "Xong rồi. ...")]
    cues = [Cue(0.0, 1.0, "…"), Cue(1.0, 2.0, "La la la.")]
    assert _triples(cues_to_sentences(cues)) == [(0.0, 2.0, "… La la la.")]


def test_out_of_order_and_overlapping_cues_give_monotonic_times():
    cues = [
        Cue(3.0, 5.0, "Câu hai."),
        Cue(0.0, 3.5, "Câu một."),  # overlaps the next cue (two speakers)
        Cue(4.9, 5.0, "Ba."),  # entirely inside the previous sentence's time
    ]
    sentences = cues_to_sentences(cues)
    assert _triples(sentences) == [
        (0.0, 3.5, "Câu một."),
        (3.5, 5.0, "Câu hai. Ba."),
    ]


def test_zero_length_cue_still_gets_start_before_end():
    assert _triples(cues_to_sentences([Cue(1.0, 1.0, "A.")])) == [(1.0, 1.001, "A.")]


def test_no_cues_no_sentences():
    assert cues_to_sentences([]) == []
    assert cues_to_sentences([Cue(0.0, 1.0, "   ")]) == []


# ----------------------------------------------------------------- file loading


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_load_subtitle_file_encodings(tmp_path, encoding):
    path = tmp_path / "sample.srt"
    path.write_text(
        "1\r\n00:00:01,000 --> 00:00:02,000\r\nXin chào Việt Nam.\r\n", encoding=encoding
    )
    assert _triples(load_subtitle_file(path)) == [(1.0, 2.0, "Xin chào Việt Nam.")]


def test_load_headerless_vtt_by_suffix(tmp_path):
    path = tmp_path / "sample.vi.vtt"
    path.write_text("NOTE made by a script\n\n00:01.000 --> 00:02.000\nmột hai\n")
    assert _triples(load_subtitle_file(str(path))) == [(1.0, 2.0, "một hai")]


def test_load_rejects_non_utf8(tmp_path):
    path = tmp_path / "legacy.srt"
    # A legacy 8-bit file: "à" and "ê" are single non-UTF-8 bytes.
    path.write_bytes("1\n00:00:01,000 --> 00:00:02,000\nCà phê\n".encode("latin-1"))
    with pytest.raises(SubtitleError, match=r"legacy\.srt: not valid UTF-8"):
        load_subtitle_file(path)
