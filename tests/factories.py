"""Factories that build real rows through the services, committed like the API would."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import shapely
from sqlalchemy.orm import Session

from gi_service.models import AuthorizationBasis, GICategory, GIKind, OrgKind, Organisation
from gi_service.services import accounts, producers, registry
from gi_service.services.accounts import Principal, principal_for
from gi_service.services.uscc import make_uscc

_seq = itertools.count(1)


@dataclass
class Actor:
    org: Organisation
    principal: Principal
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def square(lon: float, lat: float, side_m: float) -> shapely.Polygon:
    """A square of `side_m` metres centred on (lon, lat)."""
    hy = side_m / 2 / 111_320.0
    hx = side_m / 2 / (111_320.0 * math.cos(math.radians(lat)))
    return shapely.box(lon - hx, lat - hy, lon + hx, lat + hy)


class Factory:
    def __init__(self, app, session: Session):
        self.app = app
        self.session = session

    def _actor(self, org: Organisation) -> Actor:
        n = next(_seq)
        user = accounts.create_user(self.session, username=f"user{n}-{org.kind.value}", password="password-123456",
                                    organisation_id=org.id)
        _row, token = accounts.create_token(self.session, user, name="test", ttl_days=30)
        self.session.commit()
        return Actor(org, principal_for(user), token)

    def authority(self, adcode: str = "341600", name: str | None = None) -> Actor:
        org = accounts.create_organisation(self.session, kind=OrgKind.authority, adcode=adcode,
                                           name=name or f"authority {adcode} #{next(_seq)}")
        return self._actor(org)

    def inspection(self, adcode: str = "440100") -> Actor:
        org = accounts.create_organisation(self.session, kind=OrgKind.inspection, adcode=adcode,
                                           name=f"inspection {adcode} #{next(_seq)}")
        return self._actor(org)

    def uscc(self, adcode: str, org_type: str = "1") -> str:
        return make_uscc("9", org_type, adcode, f"MA{next(_seq):06d}")

    def producer(self, adcode: str = "341602", name: str | None = None) -> Actor:
        org = accounts.create_organisation(self.session, kind=OrgKind.producer, adcode=adcode,
                                           uscc=self.uscc(adcode), name=name or f"producer {adcode} #{next(_seq)}")
        return self._actor(org)

    def printer(self, adcode: str = "340104") -> Actor:
        org = accounts.create_organisation(self.session, kind=OrgKind.printer, adcode=adcode,
                                           uscc=self.uscc(adcode), name=f"printer #{next(_seq)}")
        return self._actor(org)

    def gi(self, by: Actor, *, name_zh: str = "亳白芍", area_adcodes=("341602",), **fields):
        values = dict(name_zh=name_zh, kind=GIKind.protected_product, category=GICategory.herbal_medicine,
                      area_adcodes=list(area_adcodes), standard_yield_kg_per_mu=350)
        values.update(fields)
        gi = registry.create_gi(self.session, values, by=by.principal, reason="test registration")
        self.session.commit()
        return gi

    def inside_point(self, gi) -> shapely.Point:
        area = registry.area_by_id(self.session, gi.origin_area_id)
        return area.geom.representative_point()

    def plot(self, producer: Actor, gi, side_m: float = 100.0, **kw):
        p = self.inside_point(gi)
        plot = producers.create_plot(self.session, producer.org.id, gi_id=gi.id, name=kw.get("name", "plot"),
                                     geom=square(p.x, p.y, side_m), survey_year=kw.get("survey_year", 2025),
                                     by=producer.principal)
        self.session.commit()
        return plot

    def authorization(self, producer: Actor, gi, by: Actor, approve: bool = True):
        auth = producers.create_authorization(self.session, producer_id=producer.org.id, gi_id=gi.id,
                                              basis=AuthorizationBasis.approved_producer, by=by.principal,
                                              reason="test", announcement_no="A-1" if approve else None,
                                              approve=approve)
        self.session.commit()
        return auth
