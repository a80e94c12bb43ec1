"""The API's endpoints; the document of them is openapi.py."""

from __future__ import annotations

import uuid

from flask import current_app, g, jsonify, request, url_for

from ..core.api_recordings import describe, refresh
from ..core.models import ApiSubmission
from ..extensions import csrf, db
from . import bp
from .auth import authenticate, needs, problem
from .openapi import document
from .submit import Invalid, submit

csrf.exempt(bp)  # no browser session here: a key in a header is not sent by a third site


@bp.before_request
def _key():
    if request.endpoint == "api.openapi":
        return None
    if request.endpoint == "api.create_recording":
        request.max_content_length = current_app.config["UPLOAD_MAX_BYTES"]
    return authenticate()


@bp.errorhandler(404)
def _not_found(_error):
    return problem(404, "not_found", "no such recording for this key")


@bp.errorhandler(405)
def _wrong_method(_error):
    return problem(405, "method_not_allowed", f"{request.method} is not allowed here")


@bp.errorhandler(413)
def _too_large(_error):
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    return problem(413, "too_large", f"the file is larger than {limit} bytes", field="file")


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())


@bp.post("/recordings")
@needs("submit")
def create_recording():
    if request.mimetype == "application/json":
        form = request.get_json(silent=True)
        if not isinstance(form, dict):
            return problem(422, "invalid", "the body must be a JSON object", fields={})
        upload = None
    else:
        form = request.form.to_dict()
        upload = request.files.get("file")
    try:
        submission, created = submit(g.api_key, form, upload)
    except Invalid as invalid:
        return problem(422, "invalid", str(invalid), fields=invalid.fields)
    body = describe(submission)
    answer = jsonify(body)
    answer.status_code = 202 if created else 200
    answer.headers["Location"] = url_for("api.get_recording", recording_id=submission.id)
    return answer


@bp.get("/recordings/<recording_id>")
@needs("read")
def get_recording(recording_id: str):
    try:
        wanted = uuid.UUID(recording_id)
    except ValueError:
        return problem(404, "not_found", "no such recording for this key")
    submission = db.session.get(ApiSubmission, wanted)
    if submission is None or submission.api_key_id != g.api_key.id:
        return problem(404, "not_found", "no such recording for this key")
    refresh(submission)
    db.session.commit()
    return jsonify(describe(submission))
