"""The review web app. `create_app` reads as the table of contents of the app."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request

from config import Config, config_from_env, engine_options

from .commands import register_commands
from .extensions import csrf, db, limiter, login_manager, migrate
from .ops import register_observability
from .security import configure_secret_key, register_security


def create_app(config: type[Config] | dict | None = None) -> Flask:
    config_class = config if isinstance(config, type) else config_from_env()
    if getattr(config_class, "PRODUCTION", False):
        config_class.check()
    app = Flask(
        __name__,
        template_folder="../templates",
        static_folder="../static",
        instance_relative_config=True,
    )
    app.config.from_object(config_class)
    if isinstance(config, dict):
        app.config.update(config)
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    )
    _ensure_dirs(app)
    configure_secret_key(app)

    register_observability(app)  # first: every request timed and given its id
    register_extensions(app)
    register_security(app)
    register_template_filters(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_celery(app)
    return app


def _ensure_dirs(app: Flask) -> None:
    from pathlib import Path

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    Path(app.config["DATA_ROOT"]).mkdir(parents=True, exist_ok=True)


def register_extensions(app: Flask) -> None:
    from .core import models  # noqa: F401  (the models must be known to Alembic)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def register_template_filters(app: Flask) -> None:
    from .filters import at, audio_amount, duration, moment

    app.add_template_filter(duration)
    app.add_template_filter(audio_amount)
    app.add_template_filter(at)
    app.add_template_filter(moment)


def register_blueprints(app: Flask) -> None:
    from .admin import bp as admin_bp
    from .api import bp as api_bp
    from .auth import bp as auth_bp
    from .ops import bp as ops_bp
    from .review import bp as review_bp

    app.register_blueprint(ops_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(review_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(api_bp)


def register_errorhandlers(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError

    def render_error(status: int, title: str, message: str):
        return render_template("errors/error.html", title=title, message=message), status

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_error(
            400,
            "Form expired",
            "The page was open too long or came from elsewhere. "
            "Go back, reload the page and try again; nothing was saved.",
        )

    @app.errorhandler(413)
    def too_large(error):
        message = "The request was too large. Nothing was saved; your work is kept in the page."
        if request.accept_mimetypes.best == "application/json" or request.is_json:
            return jsonify(error="too_large", message=message), 413
        return render_error(413, "Too large", message)

    @app.errorhandler(429)
    def too_many(error):
        return render_error(429, "Too many requests", str(error.description))

    @app.errorhandler(403)
    def forbidden(error):
        return render_error(403, "Not allowed", "Your account cannot open this page.")

    @app.errorhandler(404)
    def not_found(error):
        return render_error(404, "Not found", "There is nothing at this address.")

    @app.errorhandler(500)
    def server_error(error):
        db.session.rollback()
        return render_error(
            500, "Something went wrong", "The error was logged. Try again in a moment."
        )


def register_celery(app: Flask) -> None:
    from .celery_app import celery_init_app

    celery_init_app(app)
