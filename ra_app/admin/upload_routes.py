"""The admin's Upload page and the JSON calls its script makes (admin/uploads.py)."""

from flask import jsonify, render_template, request
from flask_login import current_user

from . import bp, uploads


@bp.route("/uploads")
def upload_page():
    return render_template("admin/upload.html", part_bytes=uploads.PART_BYTES)


@bp.route("/uploads", methods=["POST"])
def upload_begin():
    body = request.get_json(silent=True) or {}
    return jsonify(
        uploads.begin(
            current_user.id, body.get("name", ""), body.get("size"), body.get("modified", 0)
        )
    )


@bp.route("/uploads/<upload_id>/parts/<int:number>", methods=["PUT"])
def upload_part(upload_id, number):
    uploads.put_part(current_user.id, upload_id, number, request.get_data(cache=False))
    return jsonify({"received": number})


@bp.route("/uploads/<upload_id>/finish", methods=["POST"])
def upload_finish(upload_id):
    return jsonify(uploads.finish(current_user.id, upload_id))


@bp.errorhandler(uploads.UploadError)
def upload_refused(error):
    return jsonify({"error": str(error)}), error.status
