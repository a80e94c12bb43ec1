"""Codes in the words reviewers read: each pipeline flag on a sentence (set by
pipeline/gemini/detection.py, as "kind" or "kind: detail"), and each reason a reviewer can
give for unusable audio (review/reports.py)."""

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


UNUSABLE_REASONS = {
    "no_speech": "No speech",
    "music": "Music",
    "wrong_language": "Wrong language",
    "too_noisy": "Too noisy to understand",
}
