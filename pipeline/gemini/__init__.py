"""Gemini transcription + translation: the pieces the `gemini` and `gemini_repair` stages use.

* `client`    — the `google-genai` client per key, key rotation on quota errors, retries,
                inline audio or the Files API, and the failure classes of a reply;
* `ratelimit` — requests per minute shared by all workers (Redis) or one process (embedded);
* `schema`    — the structured replies (pydantic) and their validation;
* `prompt`    — instructions, few-shot examples, glossary hints and the prompt version;
* `detection` — translation checks that flag sentences for review;
* `chunking`  — long recordings cut into overlapping chunks and joined back without
                duplicates or gaps;
* `lexicon`   — terms learned from reviewers' corrections, edited by admins.
"""
