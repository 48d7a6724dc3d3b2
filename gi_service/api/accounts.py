"""Sign-in, tokens, organisations and users."""
from __future__ import annotations

from sqlalchemy import select

from ..db import get_session
from ..errors import Forbidden, NotFound, Unauthenticated
from ..http import audit
from ..http.access import public, signed_in
from ..http.contract import endpoint
from ..http.sign_in import count_failure, policy
from ..models import OrgKind, Organisation, User
from ..services import accounts, totp
from . import bp, serialize
from .schemas import LoginBody, OrganisationBody, PasswordChangeBody, TokenBody, UserBody

SIGN_IN_REFUSALS = {
    401: "wrong username or password (invalid_credentials), a second factor needed (totp_required) or wrong "
         "(invalid_totp, totp_reused)",
    403: "two-factor sign-in must be set up on the web pages first (totp_enrolment_required), or the password "
         "must be changed first with POST /api/v1/auth/password (password_change_required)",
    429: "too many failed sign-ins: the account is locked for the seconds in Retry-After (account_locked)",
}


def _sign_in(session, username: str, password: str, code: str | None, *, changing_password: bool) -> tuple:
    """The password, then the second factor: the user and whether two factors passed. A wrong password or
    code is counted towards the account's lockout in its own transaction before the refusal is raised."""
    rules = policy()
    try:
        user = accounts.authenticate(session, username, password, rules)
        steps = accounts.sign_in_steps(user, rules)
        if "totp_enrol" in steps:
            raise Forbidden("two-factor sign-in is required for your account: sign in on the web pages (/login) "
                            "once to set it up with an authenticator app", code="totp_enrolment_required")
        if "password_change" in steps and not changing_password:
            raise Forbidden("your password must be changed first (set by an authority, or older than "
                            f"{rules.max_age_days} days): POST /api/v1/auth/password with the same fields and "
                            "`new_password`", code="password_change_required")
        two_factor = False
        if "totp" in steps:
            if not code:
                raise Unauthenticated("this account signs in with two factors: send `totp`, the 6-digit code of "
                                      "your authenticator app (or a recovery code)", code="totp_required")
            totp.verify(session, user, code)
            two_factor = True
        accounts.signed_in(user)
    except Unauthenticated as exc:
        session.rollback()
        if exc.code in ("invalid_credentials", "invalid_totp", "totp_reused"):
            count_failure(username, rules)
        raise
    return user, two_factor


@endpoint(bp, "/auth/login", methods=["POST"], access=public(), body=LoginBody, status=201, tags=["accounts"],
          summary="Exchange a username and password (and a TOTP code, where set up) for a bearer token (shown once)",
          responses=SIGN_IN_REFUSALS)
def login(principal, body: LoginBody):
    session = get_session()
    user, two_factor = _sign_in(session, body.username, body.password, body.totp, changing_password=False)
    audit.signed_in(session, user, two_factor=two_factor)
    row, plaintext = accounts.create_token(session, user, name=body.token_name, ttl_days=body.ttl_days,
                                           two_factor=two_factor)
    session.commit()
    return {"token": plaintext, "token_info": serialize.token(row), "user": serialize.user(user)}


@endpoint(bp, "/auth/password", methods=["POST"], access=public(), body=PasswordChangeBody, status=201,
          tags=["accounts"], summary="Change my password (with the current one, and a TOTP code where set up) and "
                                     "get a bearer token (shown once)",
          responses={**SIGN_IN_REFUSALS, 422: "the new password breaks the password rules (weak_password)"})
def change_password(principal, body: PasswordChangeBody):
    session = get_session()
    user, two_factor = _sign_in(session, body.username, body.password, body.totp, changing_password=True)
    audit.signed_in(session, user, two_factor=two_factor, password_changed=True)
    accounts.change_password(session, user, body.new_password, policy())
    row, plaintext = accounts.create_token(session, user, name=body.token_name, ttl_days=body.ttl_days,
                                           two_factor=two_factor)
    session.commit()
    return {"token": plaintext, "token_info": serialize.token(row), "user": serialize.user(user)}


@endpoint(bp, "/auth/password-rules", access=public(), tags=["accounts"],
          summary="The password and sign-in rules in force (for forms that check a new password as it is typed)")
def password_rules(principal):
    rules = policy()
    return {"min_length": rules.min_length, "min_classes": rules.min_classes,
            "classes": ["lower case", "upper case", "digits", "other characters"],
            "common_passwords_refused": True, "max_age_days": rules.max_age_days or None,
            "lockout_threshold": rules.lockout_threshold, "lockout_seconds": rules.lockout_seconds,
            "lockout_max_seconds": rules.lockout_max_seconds,
            "two_factor_required_for": ["authority", "inspection"] if rules.totp_required else []}


@endpoint(bp, "/me", access=signed_in(), summary="Who am I", tags=["accounts"])
def me(principal):
    user = get_session().get(User, principal.user_id)
    return serialize.user(user)


@endpoint(bp, "/tokens", access=signed_in(), summary="My API tokens (never their secret)", tags=["accounts"])
def list_tokens(principal):
    return {"tokens": [serialize.token(t) for t in accounts.list_tokens(get_session(), principal.user_id)]}


@endpoint(bp, "/tokens", methods=["POST"], access=signed_in(note="where two-factor sign-in is required, only with a "
                                                                  "token issued after a TOTP code"),
          body=TokenBody, status=201, tags=["accounts"],
          summary="Create an API token for myself; the token is shown only in this answer",
          responses={403: "this sign-in did not pass two factors and the account needs them (two_factor_required)"})
def create_token(principal, body: TokenBody):
    session = get_session()
    user = session.get(User, principal.user_id)
    accounts.check_may_create_token(principal, user, policy())
    # A token made with a two-factor token is as strong as its maker.
    row, plaintext = accounts.create_token(session, user, name=body.name, ttl_days=body.ttl_days,
                                           two_factor=principal.two_factor)
    session.commit()
    return {"token": plaintext, "token_info": serialize.token(row)}


@endpoint(bp, "/tokens/<id:token_id>", methods=["DELETE"], access=signed_in(note="own tokens only"),
          summary="Revoke one of my tokens", tags=["accounts"], responses={404: "no such token of yours"})
def revoke_token(principal, token_id: int):
    session = get_session()
    row = accounts.revoke_token(session, token_id, by=principal)
    session.commit()
    return serialize.token(row)


def _visible_orgs(principal):
    stmt = select(Organisation).order_by(Organisation.id)
    return [o for o in get_session().scalars(stmt)
            if o.id == principal.organisation_id or principal.covers(o.adcode)]


@endpoint(bp, "/organisations", access=signed_in(note="authorities and inspection units see their jurisdiction; "
                                                       "others see their own organisation"),
          summary="Organisations I can see", tags=["accounts"])
def list_organisations(principal):
    return {"organisations": [serialize.organisation(o, private=True) for o in _visible_orgs(principal)]}


@endpoint(bp, "/organisations", methods=["POST"], access=signed_in(OrgKind.authority, note="inside its jurisdiction"),
          body=OrganisationBody, status=201, tags=["accounts"],
          summary="Register an organisation (authority, producer, printer or inspection unit)",
          responses={409: "duplicate USCC", 422: "invalid USCC or adcode"})
def create_organisation(principal, body: OrganisationBody):
    session = get_session()
    org = accounts.create_organisation(session, by=principal, **body.model_dump())
    session.commit()
    return serialize.organisation(org, private=True)


@endpoint(bp, "/organisations/<id:org_id>", access=public(note="contact details only for the organisation "
                                                                "itself and authorities covering it"),
          summary="One organisation", tags=["accounts"], responses={404: "no such organisation"})
def get_organisation(principal, org_id: int):
    org = get_session().get(Organisation, org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} does not exist")
    private = principal is not None and (principal.organisation_id == org.id or principal.covers(org.adcode))
    return serialize.organisation(org, private=private)


@endpoint(bp, "/users", methods=["POST"], access=signed_in(OrgKind.authority, note="for organisations in its "
                                                                                 "jurisdiction"),
          body=UserBody, status=201, tags=["accounts"], summary="Create a user account in an organisation",
          responses={409: "username taken",
                     422: "the first password breaks the password rules (weak_password: too short, too few kinds of "
                          "characters, a common password, or containing the username)"})
def create_user(principal, body: UserBody):
    session = get_session()
    # The authority chose this password: its owner must change it at the first sign-in.
    user = accounts.create_user_in_jurisdiction(session, principal, organisation_id=body.organisation_id,
                                                username=body.username, password=body.password,
                                                display_name=body.display_name, policy=policy())
    audit.note(user_id=user.id, organisation_id=user.organisation_id)
    session.commit()
    return serialize.user(user)


@endpoint(bp, "/users/<id:user_id>/totp/reset", methods=["POST"],
          access=signed_in(OrgKind.authority, note="for users of organisations in its jurisdiction (the same or a "
                                                   "lower level), never its own account"),
          tags=["accounts"], summary="Reset a user's two-factor sign-in (phone lost): the next sign-in sets it up "
                                     "again; the user's web sessions end",
          responses={403: "outside your jurisdiction, or your own account", 404: "no such user"})
def reset_totp(principal, user_id: int):
    session = get_session()
    user = totp.reset(session, user_id, by=principal)
    session.commit()
    return serialize.user(user)


@endpoint(bp, "/users/<id:user_id>/unlock", methods=["POST"],
          access=signed_in(OrgKind.authority, note="for users of organisations in its jurisdiction"),
          tags=["accounts"], summary="End a user's sign-in lockout now (it also ends by itself)",
          responses={403: "outside your jurisdiction", 404: "no such user"})
def unlock_user(principal, user_id: int):
    session = get_session()
    user = accounts.unlock(session, user_id, by=principal)
    session.commit()
    return serialize.user(user)
