from flask import Blueprint, abort
from flask_login import current_user

bp = Blueprint("admin", __name__)


@bp.before_request
def require_admin():
    """Every admin page answers 403 to reviewers: the check sits on the blueprint."""
    if not current_user.is_authenticated or not current_user.is_admin:
        abort(403)


from . import api_key_routes, audit_routes, report_routes, routes, upload_routes  # noqa: E402,F401
