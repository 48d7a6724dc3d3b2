"""Sign-in, tokens, organisations and users."""
from __future__ import annotations

from sqlalchemy import select

from ..db import get_session
from ..errors import Forbidden, NotFound
from ..http import audit
from ..http.access import public, signed_in
from ..http.contract import endpoint
from ..models import OrgKind, Organisation, User
from ..services import accounts
from . import bp, serialize
from .schemas import LoginBody, OrganisationBody, TokenBody, UserBody


@endpoint(bp, "/auth/login", methods=["POST"], access=public(), body=LoginBody, status=201, tags=["accounts"],
          summary="Exchange a username and password for a bearer token (shown once)",
          responses={401: "wrong username or password"})
def login(principal, body: LoginBody):
    session = get_session()
    user = accounts.authenticate(session, body.username, body.password)
    audit.signed_in(session, user)
    row, plaintext = accounts.create_token(session, user, name=body.token_name, ttl_days=body.ttl_days)
    session.commit()
    return {"token": plaintext, "token_info": serialize.token(row), "user": serialize.user(user)}


@endpoint(bp, "/me", access=signed_in(), summary="Who am I", tags=["accounts"])
def me(principal):
    user = get_session().get(User, principal.user_id)
    return serialize.user(user)


@endpoint(bp, "/tokens", access=signed_in(), summary="My API tokens (never their secret)", tags=["accounts"])
def list_tokens(principal):
    return {"tokens": [serialize.token(t) for t in accounts.list_tokens(get_session(), principal.user_id)]}


@endpoint(bp, "/tokens", methods=["POST"], access=signed_in(), body=TokenBody, status=201, tags=["accounts"],
          summary="Create an API token for myself; the token is shown only in this answer")
def create_token(principal, body: TokenBody):
    session = get_session()
    user = session.get(User, principal.user_id)
    row, plaintext = accounts.create_token(session, user, name=body.name, ttl_days=body.ttl_days)
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
          responses={409: "username taken"})
def create_user(principal, body: UserBody):
    session = get_session()
    org = session.get(Organisation, body.organisation_id)
    if org is None:
        raise NotFound(f"organisation {body.organisation_id} does not exist")
    if not principal.covers(org.adcode):
        raise Forbidden(f"organisation {org.id} is outside your jurisdiction", code="outside_jurisdiction")
    user = accounts.create_user(session, username=body.username, password=body.password,
                                organisation_id=org.id, display_name=body.display_name)
    session.commit()
    return serialize.user(user)
