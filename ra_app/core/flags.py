"""What each pipeline flag on a sentence means, in the words reviewers read (the flags
themselves are set by pipeline/gemini/detection.py, as "kind" or "kind: detail")."""

WORDS = {
    "empty_translation": "No translation",
    "english_untranslated": "English left untranslated",
    "length_ratio": "Translation length out of proportion",
    "sentence_count": "Different number of sentences",
    "inverted_times": "Ends before it starts",
    "before_start": "Starts before the recording",
    "out_of_order": "Out of order",
    "overlap": "Overlaps the sentence before",
    "beyond_end": "Runs past the end of the audio",
}


def describe(flag: str) -> str:
    """ "english_untranslated: meeting" -> "English left untranslated: meeting"."""
    kind, _, detail = flag.partition(":")
    words = WORDS.get(kind.strip(), kind.strip().replace("_", " ").capitalize())
    return f"{words}: {detail.strip()}" if detail.strip() else words
