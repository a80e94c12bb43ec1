"""The lexicon's terms: words reviewers correct again and again, kept by admins (the
Lexicon page) and given to Gemini as vocabulary and a keep-English glossary (learning them
from revisions and the prompt are the pipeline's: pipeline/gemini/lexicon.py)."""

from __future__ import annotations

import sqlalchemy as sa

from ..extensions import db
from .models import LexiconTerm
from .text import nfc

KINDS = ("vocabulary", "keep_english")


class TermError(ValueError):
    """An admin's edit that cannot be saved; the message says why."""


def list_terms(*, approved: bool | None = None, kind: str | None = None) -> list[LexiconTerm]:
    query = sa.select(LexiconTerm)
    if approved is not None:
        query = query.where(LexiconTerm.approved == approved)
    if kind is not None:
        query = query.where(LexiconTerm.kind == kind)
    order = (
        LexiconTerm.approved.desc(),
        LexiconTerm.corrections.desc(),
        sa.func.lower(LexiconTerm.term),
    )
    return list(db.session.scalars(query.order_by(*order)))


def save_term(
    term: str,
    *,
    kind: str = "vocabulary",
    translation: str | None = None,
    note: str | None = None,
    approved: bool = False,
    term_id: int | None = None,
    user_id: int | None = None,
) -> LexiconTerm:
    """Create a term, or update the one with `term_id`. Commits; raises TermError."""
    text = nfc(term or "")
    if not text:
        raise TermError("The term is empty.")
    if len(text) > 200:
        raise TermError("The term is longer than 200 characters.")
    if kind not in KINDS:
        raise TermError(f"The kind must be one of: {', '.join(KINDS)}.")
    translation = nfc(translation or "") or None
    if translation and len(translation) > 200:
        raise TermError("The translation is longer than 200 characters.")
    row = None
    if term_id is not None:
        row = db.session.get(LexiconTerm, term_id)
        if row is None:
            raise TermError(f"There is no term #{term_id}.")
    same = db.session.scalar(
        sa.select(LexiconTerm).where(sa.func.lower(LexiconTerm.term) == text.lower()).limit(1)
    )
    if same is not None and same is not row:
        raise TermError(f"“{same.term}” is already in the lexicon.")
    if row is None:
        row = LexiconTerm(term=text, created_by_id=user_id, corrections=0)
        db.session.add(row)
    row.term, row.kind, row.translation = text, kind, translation
    row.note = (note or "").strip() or None
    row.approved = approved
    db.session.commit()
    return row


def delete_term(term_id: int) -> bool:
    """Delete a term; False if there was none. Commits."""
    row = db.session.get(LexiconTerm, term_id)
    if row is None:
        return False
    db.session.delete(row)
    db.session.commit()
    return True
