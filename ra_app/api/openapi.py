"""The API's OpenAPI 3.1 document, served at /api/v1/openapi.json (tests validate it with
openapi-spec-validator and check the answers against its schemas)."""

from __future__ import annotations

from ..core.api_keys import SCOPES
from ..core.audio import MEDIA_EXTENSIONS


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def error_response(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


SENTENCES = {
    "type": ["object", "null"],
    "required": ["version", "origin", "sentences"],
    "properties": {
        "version": {"type": "integer"},
        "origin": {"type": "string", "description": "gemini, human, label_studio, …"},
        "sentences": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["start", "end", "text"],
                "properties": {
                    "start": {"type": "number"},
                    "end": {"type": "number"},
                    "text": {"type": "string"},
                },
            },
        },
    },
}
SUBMIT_FIELDS = {
    "url": {"type": "string", "format": "uri", "description": "an audio or video file"},
    "youtube_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{11}$"},
    "external_id": {
        "type": "string",
        "maxLength": 255,
        "description": "yours: sending it again answers 200 with the same recording",
    },
    "webhook_url": {
        "type": "string",
        "format": "uri",
        "description": "POSTed to when the recording is transcribed, reviewed, its segments "
        "reviewed, or it failed; signed: X-Signature: sha256=HMAC(webhook secret, "
        "X-Timestamp + '.' + body)",
    },
}


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Speech review factory API",
            "version": "1",
            "description": "Send recordings for transcription and translation, and read "
            "their state, text and segments. Every endpoint but this document needs "
            "`Authorization: Bearer <API key>`; each key has scopes and a rate per minute.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/recordings": {
                "post": {
                    "operationId": "createRecording",
                    "summary": "Send a recording (scope: submit)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": ref("NewRecording")},
                            "multipart/form-data": {"schema": ref("NewRecordingUpload")},
                        },
                    },
                    "responses": {
                        "202": recording_response("Queued for ingestion and transcription"),
                        "200": recording_response("Known external id: the earlier recording"),
                        "401": error_response("No key, or an unknown or revoked key"),
                        "403": error_response("The key lacks the submit scope"),
                        "413": error_response("The file is too large"),
                        "422": error_response("A field is wrong: `fields` names each"),
                        "429": error_response("Over the key's rate; see Retry-After"),
                    },
                }
            },
            "/recordings/{id}": {
                "get": {
                    "operationId": "getRecording",
                    "summary": "A recording's state, text and segments (scope: read)",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "format": "uuid"},
                        }
                    ],
                    "responses": {
                        "200": recording_response("The recording"),
                        "401": error_response("No key, or an unknown or revoked key"),
                        "403": error_response("The key lacks the read scope"),
                        "404": error_response("No such recording for this key"),
                        "429": error_response("Over the key's rate; see Retry-After"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document"}},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": f"An API key made by an admin; scopes: {', '.join(SCOPES)}",
                }
            },
            "schemas": schemas(),
        },
    }


def recording_response(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": ref("Recording")}},
    }


def schemas() -> dict:
    nullable_string = {"type": ["string", "null"]}
    return {
        "NewRecording": {
            "type": "object",
            "description": "Exactly one of url and youtube_id.",
            "properties": SUBMIT_FIELDS,
            "additionalProperties": False,
        },
        "NewRecordingUpload": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {
                    "type": "string",
                    "contentMediaType": "application/octet-stream",
                    "description": f"audio or video: {', '.join(sorted(MEDIA_EXTENSIONS))}",
                },
                "external_id": SUBMIT_FIELDS["external_id"],
                "webhook_url": SUBMIT_FIELDS["webhook_url"],
            },
        },
        "Recording": {
            "type": "object",
            "required": ["id", "state", "kind", "reference"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "external_id": nullable_string,
                "kind": {"enum": ["url", "youtube", "file"]},
                "reference": {"type": "string"},
                "state": {
                    "type": "string",
                    "description": "queued, failed, or the sample's processing state: "
                    "ingested, transcribed, in_review, reviewed, aligned, segmented, "
                    "segments_reviewed, denoised, exported, discarded",
                },
                "error": nullable_string,
                "created_at": {"type": "string", "format": "date-time"},
                "sample_id": {"type": ["string", "null"], "format": "uuid"},
                "title": nullable_string,
                "duration_s": {"type": ["number", "null"]},
                "transcript": SENTENCES,
                "translation": SENTENCES,
                "segments": {
                    "type": ["array", "null"],
                    "description": "after people reviewed the segments",
                    "items": {
                        "type": "object",
                        "required": ["start", "end", "text", "translation"],
                        "properties": {
                            "start": {"type": "number"},
                            "end": {"type": "number"},
                            "text": {"type": "string"},
                            "translation": {"type": "string"},
                        },
                    },
                },
            },
        },
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "each wrong field and what is wrong with it",
                },
                "field": {"type": "string"},
            },
        },
    }
