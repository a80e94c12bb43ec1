import uuid
from pathlib import Path

import pytest
from flask import url_for

from config import ProdConfig, celery_settings
from ra_app.core.accounts import reset_password, set_role
from ra_app.core.models import Role, User
from ra_app.extensions import db

from .conftest import PASSWORD, csrf_token_from


def test_right_password_signs_in(client, auth, reviewer):
    response = auth.login(reviewer.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "My queue" in page and reviewer.email in page


def test_an_admin_lands_on_the_admin_home(client, auth, admin):
    response = auth.login(admin.email)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    # A page asked for before signing in still wins.
    auth.logout()
    token = auth.csrf_token()
    asked = client.post(
        "/login?next=/admin/batches",
        data={"email": admin.email, "password": PASSWORD, "csrf_token": token},
    )
    assert asked.headers["Location"] == "/admin/batches"


def test_email_is_case_insensitive(client, auth, reviewer):
    assert auth.login(reviewer.email.upper()).status_code == 302


def test_wrong_password_is_refused(client, auth, reviewer):
    response = auth.login(reviewer.email, "not the password")
    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still anonymous


def test_unknown_email_gets_the_same_answer(auth):
    response = auth.login("nobody@example.org", "whatever123")
    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)


def test_disabled_user_cannot_sign_in(auth, make_user):
    user = make_user("gone@example.org", active=False)
    response = auth.login(user.email)
    assert response.status_code == 401
    assert "disabled" in response.get_data(as_text=True)


def test_disabling_ends_open_sessions(app, client, auth, reviewer):
    auth.login(reviewer.email)
    assert client.get("/").status_code == 200
    with app.app_context():
        db.session.get(User, reviewer.id).is_active = False
        db.session.commit()
    assert client.get("/").status_code == 302


def login_from(client, email: str, password: str, address: str):
    """A sign-in attempt from another machine's address."""
    page = client.get("/login", environ_base={"REMOTE_ADDR": address})
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def test_repeated_wrong_passwords_stop_that_account_from_that_address(app, reviewer):
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        assert login_from(app.test_client(), reviewer.email, "wrong", "10.0.0.1").status_code == 401
    refused = login_from(app.test_client(), reviewer.email, PASSWORD, "10.0.0.1")
    assert refused.status_code == 429  # even the right password, from there
    assert "Too many sign-in attempts" in refused.get_data(as_text=True)
    # Someone guessing elsewhere cannot lock the reviewer out of their own machine.
    assert login_from(app.test_client(), reviewer.email, PASSWORD, "10.0.0.2").status_code == 302
    with app.app_context():
        assert db.session.get(User, reviewer.id).failed_logins == 0  # reset by the sign-in


def test_an_unknown_email_is_answered_and_throttled_like_a_known_one(app, reviewer):
    answers = {}
    for email in (reviewer.email, "nobody@example.org"):
        seen = []
        for _ in range(app.config["LOGIN_MAX_FAILURES"] + 1):
            response = login_from(app.test_client(), email, "wrong", "10.0.0.3")
            text = response.get_data(as_text=True)
            said = "Too many sign-in attempts" if "Too many" in text else "Wrong email or password."
            assert said in text
            seen.append((response.status_code, said))
        answers[email] = seen
    assert answers[reviewer.email] == answers["nobody@example.org"]
    assert answers[reviewer.email][-1][0] == 429


def wrong_passwords_at_once(app, email: str, count: int) -> list[int]:
    """`count` sign-ins with wrong passwords, each from its own browser, all at once."""
    from concurrent.futures import ThreadPoolExecutor

    clients = [app.test_client() for _ in range(count)]
    tokens = [csrf_token_from(c.get("/login").get_data(as_text=True)) for c in clients]

    def guess(i):
        form = {"email": email, "password": f"wrong {i}", "csrf_token": tokens[i]}
        return clients[i].post("/login", data=form).status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(guess, range(count)))


def test_twelve_parallel_wrong_passwords_all_count(app, reviewer):
    """Counted by the database and by the limiter atomically: twelve guesses at once lock
    the account from that address, and each one that was checked is on the account."""
    app.config["LOGIN_MAX_FAILURES"] = 12
    assert wrong_passwords_at_once(app, reviewer.email, 12) == [401] * 12
    with app.app_context():
        assert db.session.get(User, reviewer.id).failed_logins == 12
    # The thirteenth attempt, with the right password, finds the limit reached.
    assert login_from(app.test_client(), reviewer.email, PASSWORD, "127.0.0.1").status_code == 429


def test_twelve_parallel_guesses_get_no_more_than_the_limit_checked(app, reviewer):
    statuses = sorted(wrong_passwords_at_once(app, reviewer.email, 12))
    limit = app.config["LOGIN_MAX_FAILURES"]
    assert statuses == [401] * limit + [429] * (12 - limit)
    with app.app_context():
        assert db.session.get(User, reviewer.id).failed_logins == limit


def test_the_address_limit_holds_across_accounts(app, make_user):
    app.config["LOGIN_MAX_PER_ADDRESS"] = 3
    for n in range(3):
        assert (
            login_from(app.test_client(), f"u{n}@example.org", "x", "10.0.0.9").status_code == 401
        )
    user = make_user("real@example.org")
    assert login_from(app.test_client(), user.email, PASSWORD, "10.0.0.9").status_code == 429


def test_a_new_password_or_role_ends_open_sessions_and_remember_me(app, client, auth, reviewer):
    token = auth.csrf_token()
    client.post(
        "/login",
        data={"email": reviewer.email, "password": PASSWORD, "remember": "y", "csrf_token": token},
    )
    assert client.get("/").status_code == 200
    remember = client.get_cookie("remember_token")
    assert remember is not None
    with app.app_context():
        set_role(db.session.get(User, reviewer.id), Role.ADMIN)
    assert client.get("/").status_code == 302  # the session is over
    other = app.test_client()  # and the remember-me cookie opens nothing either
    other.set_cookie("remember_token", remember.value)
    assert other.get("/").status_code == 302

    auth.login(reviewer.email)
    assert client.get("/").status_code == 200
    with app.app_context():
        reset_password(db.session.get(User, reviewer.id), "a brand new password")
    assert client.get("/").status_code == 302


def test_login_without_csrf_token_is_refused(client, reviewer):
    response = client.post("/login", data={"email": reviewer.email, "password": PASSWORD})
    assert response.status_code == 400


def test_logout_without_csrf_token_is_refused(client, auth, reviewer):
    auth.login(reviewer.email)
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200  # still signed in


def test_logout(client, auth, reviewer):
    auth.login(reviewer.email)
    assert auth.logout().status_code == 302
    assert client.get("/").status_code == 302


def test_next_is_followed_only_within_the_site(client, auth, reviewer):
    token = auth.csrf_token()
    data = {"email": reviewer.email, "password": PASSWORD, "csrf_token": token}
    response = client.post("/login?next=//evil.example/x", data=data)
    assert response.headers["Location"] == "/"


def test_password_is_stored_with_a_slow_hash(reviewer):
    assert reviewer.password_hash.startswith("scrypt:")
    assert PASSWORD not in reviewer.password_hash


def rules(app, predicate):
    return [r for r in app.url_map.iter_rules() if predicate(r)]


def build_url(app, rule):
    """Fill every URL variable with a harmless value of the right converter type."""
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name].__class__.__name__
        values[name] = {"IntegerConverter": 1, "UUIDConverter": str(uuid.UUID(int=1))}.get(
            converter, "x"
        )
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def test_reviewer_gets_403_on_every_admin_url(app, client, auth, reviewer):
    """Every method of every admin URL, with a valid CSRF token on the writes (as a page of
    the app would send), so it is the role check that answers, not CSRF."""
    admin_rules = rules(app, lambda r: r.endpoint.startswith("admin."))
    assert admin_rules, "no admin pages found"
    auth.login(reviewer.email)
    token = auth.csrf_token("/")
    for rule in admin_rules:
        url = build_url(app, rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            extra = {} if method == "GET" else {"data": {"csrf_token": token}}
            response = client.open(url, method=method, **extra)
            assert response.status_code == 403, f"{method} {url} -> {response.status_code}"


def test_admin_opens_admin_home(client, auth, admin):
    auth.login(admin.email)
    assert client.get("/admin/").status_code == 200


def test_anonymous_is_sent_to_sign_in_from_every_page(app, client):
    from ra_app.auth.routes import PUBLIC_ENDPOINTS

    # Only the sign-in page, the static files and the health checks are open (widening this
    # set is a decision this test makes you take twice).
    public = {
        "auth.login",
        "static",
        "ops.healthz",
        "ops.readyz",
        "ops.readyz_queues",
        "ops.metrics",
    }
    assert PUBLIC_ENDPOINTS == public
    pages = rules(app, lambda r: r.endpoint not in public and not r.endpoint.startswith("api."))
    for rule in [r for r in pages if "GET" in r.methods]:
        url = build_url(app, rule)
        response = client.get(url)
        assert response.status_code == 302, f"{url} answered {response.status_code}"
        assert response.headers["Location"].startswith("/login"), url
    # The HTTP API asks for a key instead (tests/test_api.py); only its document is open.
    for rule in rules(app, lambda r: r.endpoint.startswith("api.") and r.endpoint != "api.openapi"):
        url = build_url(app, rule)
        method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        response = client.open(url, method=method)
        assert response.status_code == 401, f"{method} {url} answered {response.status_code}"


def test_session_cookie_is_httponly_and_samesite(client, auth, reviewer):
    response = auth.login(reviewer.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in the embedded mode and in tests


def test_production_cookies_are_secure():
    assert ProdConfig.SESSION_COOKIE_SECURE and ProdConfig.REMEMBER_COOKIE_SECURE


def test_production_refuses_to_start_without_its_settings(monkeypatch):
    from ra_app import create_app

    monkeypatch.setattr(ProdConfig, "SQLALCHEMY_DATABASE_URI", "postgresql+psycopg2://db/x")
    monkeypatch.setattr(ProdConfig, "CELERY", celery_settings("redis://127.0.0.1:6379/0"))
    monkeypatch.setattr(ProdConfig, "SECRET_KEY", None)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(ProdConfig)
    monkeypatch.setattr(ProdConfig, "SECRET_KEY", "short")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(ProdConfig)
    monkeypatch.setattr(ProdConfig, "SECRET_KEY", "k" * 48)
    monkeypatch.setattr(ProdConfig, "CELERY", celery_settings(None))
    with pytest.raises(RuntimeError, match="CELERY_BROKER_URL"):
        create_app(ProdConfig)


def test_a_cookie_signed_with_another_installations_key_opens_nothing(
    tmp_path, database_url_for_session
):
    """The embedded mode runs on this installation's own random key (instance/secret_key),
    never the old public development one: a cookie signed with that, or with any other
    installation's key, is no session here."""
    from flask.sessions import SecureCookieSessionInterface
    from flask_migrate import upgrade

    from ra_app import create_app
    from ra_app.security import KEY_FILE, instance_key

    from .conftest import make_app

    app = make_app(
        f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        tmp_path / "data",
        SECRET_KEY=None,
        CELERY=celery_settings(None),
    )
    with app.app_context():
        upgrade()
        admin = User(email="admin@example.org", role=Role.ADMIN)
        admin.set_password(PASSWORD)
        db.session.add(admin)
        db.session.commit()
        admin_id = admin.id
    own_key = app.config["SECRET_KEY"]
    assert own_key == instance_key(Path(app.instance_path) / KEY_FILE)
    for key in ("dev-only-not-secret", "another installation's key"):
        assert key != own_key
        other = create_app({"SECRET_KEY": key, "TESTING": True})
        forged = (
            SecureCookieSessionInterface()
            .get_signing_serializer(other)
            .dumps({"_user_id": f"{admin_id}:0", "_fresh": True})
        )
        outside = app.test_client()
        outside.set_cookie("session", forged)
        assert outside.get("/admin/users").status_code == 302  # to the sign-in page
    signed_in = app.test_client()
    signed_in.post(
        "/login",
        data={
            "email": "admin@example.org",
            "password": PASSWORD,
            "csrf_token": csrf_token_from(signed_in.get("/login").get_data(as_text=True)),
        },
    )
    assert signed_in.get("/admin/users").status_code == 200  # the key itself works

    key_a = instance_key(tmp_path / "a" / "secret_key")
    assert key_a == instance_key(tmp_path / "a" / "secret_key")  # kept
    assert key_a != instance_key(tmp_path / "b" / "secret_key")  # per installation
    assert oct((tmp_path / "a" / "secret_key").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        create_app({"SQLALCHEMY_DATABASE_URI": database_url_for_session, "SECRET_KEY": None})


def test_sign_in_works_and_stays_limited_with_the_limit_storage_down(
    database_url_for_session, tmp_path, reviewer
):
    """Redis (where the limits are counted) unreachable: sign-in neither fails nor stops
    counting; this process counts until Redis is back."""
    import socket

    from .conftest import make_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    app = make_app(
        database_url_for_session, tmp_path, RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{dead}/0"
    )
    assert login_from(app.test_client(), reviewer.email, PASSWORD, "10.1.0.1").status_code == 302
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert login_from(app.test_client(), reviewer.email, "wrong", "10.1.0.2").status_code == 401
    assert login_from(app.test_client(), reviewer.email, PASSWORD, "10.1.0.2").status_code == 429
