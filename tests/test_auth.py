import uuid
from datetime import timedelta

import pytest
from flask import url_for

from config import ProdConfig
from ra_app.extensions import db
from ra_app.models import User, utcnow

from .conftest import PASSWORD


def test_right_password_signs_in(client, auth, reviewer):
    response = auth.login(reviewer.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "My queue" in page and reviewer.email in page


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


def test_repeated_wrong_passwords_lock_the_account(app, auth, reviewer):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        auth.login(reviewer.email, "wrong password")
    response = auth.login(reviewer.email)  # even the right password is refused now
    assert response.status_code == 401
    assert "locked" in response.get_data(as_text=True)
    with app.app_context():
        user = db.session.get(User, reviewer.id)
        user.locked_until = utcnow() - timedelta(seconds=1)  # the lock has run out
        db.session.commit()
    assert auth.login(reviewer.email).status_code == 302


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
    admin_rules = rules(app, lambda r: r.endpoint.startswith("admin."))
    assert admin_rules, "no admin pages found"
    auth.login(reviewer.email)
    for rule in admin_rules:
        url = build_url(app, rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method)
            assert response.status_code in (403, 400), f"{method} {url} -> {response.status_code}"
            if method == "GET":
                assert response.status_code == 403, f"{url} is open to reviewers"


def test_admin_opens_admin_home(client, auth, admin):
    auth.login(admin.email)
    assert client.get("/admin/").status_code == 200


def test_anonymous_is_sent_to_sign_in_from_every_page(app, client):
    public = {"auth.login", "static"}
    for rule in rules(app, lambda r: r.endpoint not in public and "GET" in r.methods):
        url = build_url(app, rule)
        response = client.get(url)
        assert response.status_code == 302, f"{url} answered {response.status_code}"
        assert response.headers["Location"].startswith("/login"), url


def test_session_cookie_is_httponly_and_samesite(client, auth, reviewer):
    response = auth.login(reviewer.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in the embedded mode and in tests


def test_production_cookies_are_secure():
    assert ProdConfig.SESSION_COOKIE_SECURE and ProdConfig.REMEMBER_COOKIE_SECURE


def test_production_refuses_the_development_key(monkeypatch):
    from config import DEV_SECRET_KEY
    from ra_app import create_app

    monkeypatch.setattr(ProdConfig, "SECRET_KEY", DEV_SECRET_KEY)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(ProdConfig)
    monkeypatch.setattr(ProdConfig, "SECRET_KEY", "short")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(ProdConfig)
