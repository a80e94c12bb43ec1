"""The admin's API keys page: make a key (shown once, on the answer to the form), see the
keys and their last use, revoke one."""

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..core.api_keys import SCOPES, ApiKeyError, all_keys, create_key, revoke_key
from ..extensions import db
from . import bp


def keys_page(new_key=None, new_text=None, error=None, status=200):
    page = render_template(
        "admin/api_keys.html",
        keys=all_keys(),
        scopes=SCOPES,
        new_key=new_key,
        new_text=new_text,
        error=error,
    )
    return page, status


@bp.route("/api-keys")
def api_keys():
    return keys_page()


@bp.route("/api-keys", methods=["POST"])
def api_key_create():
    try:
        key, text = create_key(
            request.form.get("name", ""), request.form.getlist("scopes"), current_user.id
        )
    except ApiKeyError as error:
        return keys_page(error=str(error), status=422)
    db.session.commit()
    # Shown in this answer only (never in the session or a redirect): it is not kept.
    return keys_page(new_key=key, new_text=text)


@bp.route("/api-keys/<int:key_id>/revoke", methods=["POST"])
def api_key_revoke(key_id: int):
    try:
        key = revoke_key(key_id)
    except ApiKeyError as error:
        return keys_page(error=str(error), status=404)
    db.session.commit()
    flash(f"API key “{key.name}” revoked: its next request is refused.")
    return redirect(url_for("admin.api_keys"))
