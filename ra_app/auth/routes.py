from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..core.models import User
from ..extensions import db, login_manager
from . import bp
from .forms import LoginForm
from .services import authenticate

# Pages anyone may open; every other endpoint needs a signed-in user (see require_login).
# The health checks and metrics answer probes and scrapers, which do not sign in; /metrics
# has its own guard (ra_app/ops/metrics.py).
PUBLIC_ENDPOINTS = {
    "auth.login",
    "static",
    "ops.healthz",
    "ops.readyz",
    "ops.readyz_queues",
    "ops.metrics",
}

login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.session_protection = "basic"


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The session (or remember-me cookie) holds "<user id>:<session epoch>"; raising the
    epoch (a password reset, a role change) ends every session made before. A disabled
    account loses its open sessions too."""
    user_id, _, epoch = session_id.partition(":")
    if not user_id.isdigit() or not epoch.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_active or user.session_epoch != int(epoch):
        return None
    return user


@bp.before_app_request
def require_login():
    """Sign-in is required everywhere but the public endpoints: a new page cannot forget it.
    The HTTP API (/api/v1) is for other systems: its own hook asks for an API key."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    if request.blueprint == "api":
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def safe_next(target: str | None, user) -> str:
    """Only same-site relative paths, so the sign-in page is no open redirect. Without one,
    admins land on the admin home and reviewers on their queue."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("admin.home" if user.is_admin else "review.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(None, current_user))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        result = authenticate(form.email.data, form.password.data, request.remote_addr)
        if result.user is not None:
            login_user(result.user, remember=form.remember.data)
            return redirect(safe_next(request.args.get("next"), result.user))
        flash(result.error, "error")
        status = 429 if result.throttled else 401
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
