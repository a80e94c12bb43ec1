import importlib

import pytest

import config


@pytest.fixture
def fresh_config(monkeypatch):
    def load(**environ):
        for key in ("DATABASE_URL", "CELERY_BROKER_URL", "APP_ENV", "SECRET_KEY", "DATA_ROOT"):
            monkeypatch.delenv(key, raising=False)
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(config, "load_dotenv", lambda *a, **k: None)
        return importlib.reload(config)

    yield load
    monkeypatch.undo()
    importlib.reload(config)


def test_defaults_are_the_embedded_mode(fresh_config, tmp_path):
    cfg = fresh_config()
    assert cfg.config_from_env() is cfg.DevConfig
    assert cfg.Config.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///")
    assert cfg.Config.SQLALCHEMY_DATABASE_URI.endswith("instance/review.sqlite3")
    assert cfg.Config.CELERY["task_always_eager"] is True
    assert cfg.Config.DATA_ROOT.name == "data"


def test_postgres_and_redis_switch_to_production(fresh_config):
    cfg = fresh_config(
        DATABASE_URL="postgres://u:p@db:5432/review", CELERY_BROKER_URL="redis://r:6379/0"
    )
    assert cfg.Config.RATELIMIT_STORAGE_URI == "redis://r:6379/0"  # limits shared by workers
    assert cfg.config_from_env() is cfg.ProdConfig
    assert cfg.Config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg2://u:p@db:5432/review"
    celery = cfg.Config.CELERY
    assert celery["task_always_eager"] is False
    assert celery["broker_url"] == "redis://r:6379/0"
    assert celery["task_acks_late"] and celery["task_reject_on_worker_lost"]
    assert celery["worker_prefetch_multiplier"] == 1
    assert celery["accept_content"] == ["json"]
    # Redis must not redeliver a task that is still within its time limit.
    assert celery["broker_transport_options"]["visibility_timeout"] > cfg.LONGEST_TASK_S
    assert celery["task_time_limit"] <= cfg.LONGEST_TASK_S


PG = "postgresql://u:p@db:5432/review"


def test_production_refuses_to_start_without_a_secret_key(fresh_config):
    cfg = fresh_config(APP_ENV="production", DATABASE_URL=PG, CELERY_BROKER_URL="redis://r/0")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        cfg.ProdConfig.check()
    cfg = fresh_config(
        APP_ENV="production", DATABASE_URL=PG, CELERY_BROKER_URL="redis://r/0", SECRET_KEY="k" * 48
    )
    cfg.ProdConfig.check()


@pytest.mark.parametrize(
    "environ,missing",
    [
        ({"DATABASE_URL": PG}, ["CELERY_BROKER_URL", "SECRET_KEY"]),  # no APP_ENV, no broker
        ({"APP_ENV": "production", "SECRET_KEY": "k" * 48}, ["DATABASE_URL", "CELERY_BROKER_URL"]),
        ({"DATABASE_URL": PG, "CELERY_BROKER_URL": "redis://r/0"}, ["SECRET_KEY"]),
        (
            {"DATABASE_URL": PG, "STORAGE_BACKEND": "s3", "S3_ENDPOINT": "http://s3.internal"},
            ["S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET", "STORAGE_BACKEND=s3"],
        ),
        ({"DATABASE_URL": PG, "STORAGE_BACKEND": "nfs"}, ["STORAGE_BACKEND=local or s3"]),
        ({"DATABASE_URL": PG, "AUDIO_DELIVERY": "cdn"}, ["AUDIO_DELIVERY=stream or redirect"]),
    ],
)
def test_a_server_database_means_production_and_every_missing_setting_is_named(
    fresh_config, environ, missing
):
    cfg = fresh_config(**environ)
    assert cfg.config_from_env() is cfg.ProdConfig
    with pytest.raises(RuntimeError) as refused:
        cfg.ProdConfig.check()
    for name in missing:
        assert name in str(refused.value)


def test_postgres_without_app_env_and_broker_does_not_open_the_admin_area(fresh_config):
    """The case that used to run the development config with its public key."""
    fresh_config(DATABASE_URL=PG)
    from ra_app import create_app

    with pytest.raises(RuntimeError, match="Production needs"):
        create_app()


def test_app_env_must_be_one_of_two(fresh_config):
    cfg = fresh_config(APP_ENV="staging")
    with pytest.raises(RuntimeError, match="APP_ENV"):
        cfg.config_from_env()


def test_development_on_postgres_needs_its_own_key(fresh_config, tmp_path):
    fresh_config(APP_ENV="development", DATABASE_URL=PG, DATA_ROOT=str(tmp_path))
    from ra_app import create_app

    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        create_app()
