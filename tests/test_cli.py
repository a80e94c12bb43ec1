import sqlalchemy as sa

from ra_app.core.models import Role, User
from ra_app.extensions import db

from .conftest import AuthActions


def users(app):
    with app.app_context():
        return {u.email: u for u in db.session.scalars(sa.select(User))}


def test_create_user_with_password_from_stdin(app, runner, auth):
    result = runner.invoke(
        args=["users", "create", "New@Example.org", "--role", "admin", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    user = users(app)["new@example.org"]
    assert user.role is Role.ADMIN
    assert auth.login("new@example.org", "a long enough password").status_code == 302


def test_create_user_prompts_for_the_password(app, runner):
    result = runner.invoke(
        args=["users", "create", "p@example.org"], input="prompted password\nprompted password\n"
    )
    assert result.exit_code == 0, result.output
    assert users(app)["p@example.org"].check_password("prompted password")


def test_create_refuses_duplicates_and_short_passwords(app, runner, reviewer):
    dup = runner.invoke(
        args=["users", "create", reviewer.email, "--password-stdin"], input="whatever12345\n"
    )
    assert dup.exit_code != 0 and "already exists" in dup.output
    short = runner.invoke(
        args=["users", "create", "s@example.org", "--password-stdin"], input="x\n"
    )
    assert short.exit_code != 0 and "at least 8" in short.output
    assert "s@example.org" not in users(app)


def test_list_set_role_disable_enable(app, runner, reviewer):
    assert "reviewer@example.org\treviewer\tactive" in runner.invoke(args=["users", "list"]).output
    assert runner.invoke(args=["users", "set-role", reviewer.email, "admin"]).exit_code == 0
    assert users(app)[reviewer.email].role is Role.ADMIN
    assert runner.invoke(args=["users", "disable", reviewer.email]).exit_code == 0
    assert users(app)[reviewer.email].is_active is False
    assert "disabled" in runner.invoke(args=["users", "list"]).output
    assert runner.invoke(args=["users", "enable", reviewer.email]).exit_code == 0
    assert users(app)[reviewer.email].is_active is True


def test_commands_on_an_unknown_user_fail_clearly(runner):
    result = runner.invoke(args=["users", "disable", "ghost@example.org"])
    assert result.exit_code != 0 and "no user ghost@example.org" in result.output
    bad_role = runner.invoke(args=["users", "set-role", "ghost@example.org", "owner"])
    assert bad_role.exit_code != 0


def test_demo_is_refused_outside_the_embedded_mode(runner):
    result = runner.invoke(args=["demo"])  # the tests' app: Postgres and a broker
    assert result.exit_code != 0 and "embedded mode only" in result.output


def test_demo_creates_accounts_and_a_batch_to_review_once(embedded_app):
    app, runner, client = embedded_app, embedded_app.test_cli_runner(), embedded_app.test_client()
    auth = AuthActions(client)
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and second.output.count("already there") == 3
    assert set(users(app)) == {"admin@demo.local", "reviewer@demo.local"}
    assert "password:" in first.output
    with app.app_context():
        from ra_app.core.models import Assignment, Batch, TaskType

        tasks = db.session.scalars(sa.select(Assignment)).all()
        assert sorted(t.task_type for t in tasks) == sorted(TaskType)
        assert {t.reviewer.email for t in tasks} == {"reviewer@demo.local"}
        # Each task type's demo tasks are a batch, as an admin would have made them.
        batches = {t.task_type: db.session.get(Batch, t.batch_id) for t in tasks}
        assert {t: b.name for t, b in batches.items()} == {
            t: f"Demo: {t.value.replace('_', ' ')}" for t in TaskType
        }
        assert all(b.task_type is t for t, b in batches.items())
    assert auth.login("reviewer@demo.local", "demo-reviewer-pass").status_code == 302
    queue = client.get("/").get_data(as_text=True)
    assert "Demo · review laptop" in queue and "Demo · họp team" in queue
    auth.logout()
    assert auth.login("admin@demo.local", "demo-admin-pass").headers["Location"] == "/admin/"
    batches = client.get("/admin/batches").get_data(as_text=True)
    assert "Demo: transcript correction" in batches and "No batches yet" not in batches


def test_set_password_ends_the_accounts_sessions(app, runner, auth, client, reviewer):
    auth.login(reviewer.email)
    assert client.get("/").status_code == 200
    result = runner.invoke(
        args=["users", "set-password", reviewer.email, "--password-stdin"],
        input="another long password\n",
    )
    assert result.exit_code == 0 and "open sessions ended" in result.output
    assert client.get("/").status_code == 302
    assert auth.login(reviewer.email, "another long password").status_code == 302
    short = runner.invoke(
        args=["users", "set-password", reviewer.email, "--password-stdin"], input="short\n"
    )
    assert short.exit_code != 0 and "at least" in short.output
