"""An app with the sign-in rules on as in production (TOTP required, lockout for every account), a clock the
tests move, and helpers to read codes as an authenticator app would."""
from __future__ import annotations

import pyotp
import pytest
from sqlalchemy.orm import Session

from gi_service import create_app
from gi_service.config import Settings, finalize
from gi_service.models import User
from gi_service.services import accounts, totp
from tests.conftest import CACHE_DIR
from tests.factories import Actor, Factory, ServiceClock, cst

STRONG = "Str0ng-enough!pw"


@pytest.fixture
def clock(monkeypatch) -> ServiceClock:
    return ServiceClock(monkeypatch, cst(2026, 9, 1, 9, 0))


def make_app(database, tmp_path, **settings):
    values = dict(env="test", instance_path=tmp_path / "instance", database_url=database.url,
                  secret_key="test-secret-key-" + "x" * 32, cache_dir=CACHE_DIR, public_base_url="http://gi.test",
                  ratelimit_enabled=False, totp_required=True, lockout_threshold=3, lockout_seconds=60,
                  lockout_max_seconds=240, password_max_age_days=90)
    values.update(settings)
    application = create_app(finalize(Settings(**values)))
    application.config["TESTING"] = True
    return application


@pytest.fixture
def strict_app(database, tmp_path, clock):
    application = make_app(database, tmp_path)
    yield application
    application.extensions["gi_engine"].dispose()
    database.clear()


@pytest.fixture
def strict_client(strict_app):
    return strict_app.test_client()


@pytest.fixture
def strict_session(strict_app):
    s = Session(strict_app.extensions["gi_engine"], expire_on_commit=False)
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def strict_factory(strict_app, strict_session):
    return Factory(strict_app, strict_session)


def real_account(session, actor: Actor, password: str = STRONG) -> User:
    """Make a factory account an ordinary one (not exempt from the rules) with a known password."""
    user = session.get(User, actor.principal.user_id)
    user.rules_exempt = False
    user.password_hash = accounts.hash_password(password)
    session.commit()
    return user


def enable_totp(session, user: User, clock: ServiceClock) -> tuple[pyotp.TOTP, list[str]]:
    """Set TOTP up as the enrolment pages do (the app's first code confirms it); the app to read codes from, and
    the recovery codes. The clock then moves to the next 30-second step."""
    secret = totp.begin_enrolment(session, user)
    app_ = pyotp.TOTP(secret)
    codes = totp.confirm_enrolment(session, user, app_.at(clock.now()))
    session.commit()
    clock.advance(seconds=30)
    return app_, codes
