"""`gi-service authorizations expire`: approved authorizations with no mark use for two years lapse, by the
service itself; a dry run changes nothing, and running it again (daily, from cron) changes nothing more."""
from __future__ import annotations

import datetime as dt

from click.testing import CliRunner
from sqlalchemy import select, update

from gi_service.cli import main
from gi_service.models import Authorization, AuthorizationEvent, AuthorizationStatus
from gi_service.clock import CHINA_TZ

from .conftest import count, fresh

JSON = {"Accept": "application/json"}


def _run(env, *args):
    result = CliRunner().invoke(main, ["authorizations", "expire", *args], env=env, catch_exceptions=False)
    return result


def _status(session, auth_id: int) -> AuthorizationStatus:
    fresh(session)
    return session.get(Authorization, auth_id).status


def test_expire_lapses_unused_authorizations_once(story, client, session, database, tmp_path):
    """Does an authorization approved 800 days ago and never used lapse (system event, dry run first changing
    nothing), does a second run change nothing, and do authorizations used or approved today lapse exactly
    730 days later, after which the consumer page answers 451 for the lapsed producer's marks?"""
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path)}
    today = dt.datetime.now(dt.timezone.utc).astimezone(CHINA_TZ).date()
    batch = story.batch(10)
    story.activate(batch, 1, 10)                                           # used today
    used = session.scalar(select(Authorization.id).where(Authorization.producer_id == story.producer.org.id))
    fresh_auth = story.factory.authorization(story.factory.producer("341602"), story.gi, story.authority).id
    old_producer = story.factory.producer("341602", name="久未用标企业")
    old = story.factory.authorization(old_producer, story.gi, story.authority).id
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=800)
    session.execute(update(AuthorizationEvent).where(AuthorizationEvent.authorization_id == old)
                    .values(changed_at=long_ago))
    session.execute(update(Authorization).where(Authorization.id == old)
                    .values(valid_from=long_ago.date(), created_at=long_ago))
    suspended = story.factory.authorization(story.factory.producer("341602"), story.gi, story.authority).id
    session.execute(update(AuthorizationEvent).where(AuthorizationEvent.authorization_id == suspended)
                    .values(changed_at=long_ago))
    session.execute(update(Authorization).where(Authorization.id == suspended)
                    .values(status=AuthorizationStatus.suspended))
    session.commit()
    events = count(session, AuthorizationEvent)

    dry = _run(env, "--dry-run")
    assert dry.exit_code == 0, dry.output
    lines = dry.output.strip().splitlines()
    assert lines[0].startswith(f"would lapse authorization {old}: 久未用标企业") and "800 days ago" in lines[0]
    assert lines[-1].startswith("1 authorization(s) would lapse")
    assert _status(session, old) == AuthorizationStatus.approved and count(session, AuthorizationEvent) == events

    first = _run(env)
    assert first.exit_code == 0 and first.output.startswith(f"lapsed authorization {old}:")
    assert _status(session, old) == AuthorizationStatus.lapsed
    lapse = session.scalars(select(AuthorizationEvent).where(AuthorizationEvent.authorization_id == old)
                            .order_by(AuthorizationEvent.id.desc())).first()
    assert (lapse.from_status, lapse.to_status, lapse.changed_by_id) == ("approved", "lapsed", None)
    assert "no use of the special mark since" in lapse.reason
    assert session.get(Authorization, old).valid_until == today
    assert _status(session, suspended) == AuthorizationStatus.suspended   # only approved ones lapse

    again = _run(env)
    assert again.exit_code == 0 and again.output.strip() == \
        f"0 authorization(s) lapsed as of {today.isoformat()} (limit 730 days without mark use)"
    assert count(session, AuthorizationEvent) == events + 1

    # Used (activated) today, or approved today: not yet on day 729, lapsed on day 730.
    assert "0 authorization(s) lapsed" in _run(env, "--today", (today + dt.timedelta(days=729)).isoformat()).output
    later = _run(env, "--today", (today + dt.timedelta(days=730)).isoformat())
    assert later.output.count("lapsed authorization") == 2 and "last mark use" in later.output
    assert _status(session, used) == AuthorizationStatus.lapsed
    assert _status(session, fresh_auth) == AuthorizationStatus.lapsed
    r = client.get(f"/v/{batch.code(1)}", headers=JSON)
    assert r.status_code == 451 and r.json["detail"] == "lapsed"


def test_expire_refuses_a_malformed_date(database, tmp_path):
    """Is `--today` in another format refused with a usage error, before touching the database?"""
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path)}
    result = CliRunner().invoke(main, ["authorizations", "expire", "--today", "22/11/2026"], env=env)
    assert result.exit_code == 2 and "--today" in result.output
