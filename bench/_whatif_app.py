"""Bench-only what-if, NOT the product: the app with the task page's WER/CER score
(`ra_app.core.scoring.score_revision`, an O(n·m) pure-Python edit distance over the whole
window's text, computed on every GET of a task page) replaced by a constant, so that
`bench.review_page` can measure what the browser side of the page costs on its own.

    gunicorn -c gunicorn.conf.py "bench._whatif_app:create_app()"
"""

from __future__ import annotations


def _no_score(machine_sentences, human_sentences) -> dict:
    return {"wer": None, "cer": None, "words_machine": 0, "words_human": 0}


def create_app():
    from ra_app import create_app as product_create_app
    from ra_app.core import scoring

    scoring.score_revision = _no_score  # page.analyse calls scoring.score_revision(...)
    return product_create_app()
