"""Request bodies and query strings, validated strictly (unknown fields are refused)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..models import AuthorizationBasis, AuthorizationStatus, GICategory, GIKind, GIStatus, OrgKind

Adcode = Annotated[str, Field(pattern=r"^[0-9]{6}$", description="6-digit administrative division code")]
Id = Annotated[int, Field(ge=1, le=2**31 - 1, description="row id")]
Offset = Annotated[int, Field(ge=0, le=2**31 - 1)]
Reason = Annotated[str, Field(min_length=2, max_length=1000, description="why the change is made (kept in history)")]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginBody(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)
    token_name: str = Field(default="api", max_length=100)
    ttl_days: int = Field(default=30, ge=1, le=365)


class TokenBody(Strict):
    name: str = Field(min_length=1, max_length=100)
    ttl_days: int = Field(default=90, ge=1, le=3650)


class OrganisationBody(Strict):
    kind: OrgKind
    name: str = Field(min_length=2, max_length=200)
    name_en: Optional[str] = Field(default=None, max_length=200)
    uscc: Optional[str] = Field(default=None, min_length=18, max_length=18)
    adcode: Optional[Adcode] = None
    address: Optional[str] = Field(default=None, max_length=300)
    contact: Optional[str] = Field(default=None, max_length=200)


class UserBody(Strict):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=10, max_length=200)
    display_name: Optional[str] = Field(default=None, max_length=120)
    organisation_id: Id


class QualityRequirements(Strict):
    variety: Optional[str] = Field(default=None, max_length=4000)
    site: Optional[str] = Field(default=None, max_length=4000)
    climate: Optional[str] = Field(default=None, max_length=4000)
    cultivation: Optional[str] = Field(default=None, max_length=4000)
    process: Optional[str] = Field(default=None, max_length=4000)
    sensory: Optional[str] = Field(default=None, max_length=4000)
    physico_chemical: Optional[str] = Field(default=None, max_length=4000)
    safety: Optional[str] = Field(default=None, max_length=4000)
    packaging: Optional[str] = Field(default=None, max_length=4000)
    other: Optional[str] = Field(default=None, max_length=4000)


class GIFieldsBody(Strict):
    name_pinyin: Optional[str] = Field(default=None, max_length=200)
    name_en: Optional[str] = Field(default=None, max_length=200)
    registration_no: Optional[str] = Field(default=None, max_length=100,
                                           description="announcement number or trademark registration number")
    registration_date: Optional[dt.date] = None
    legacy_agi_code: Optional[str] = Field(default=None, pattern=r"^AGI\d{4}-\d{2}-\d{4,5}$",
                                           description="old agricultural GI code, e.g. AGI2014-02-1467")
    status: Optional[GIStatus] = None
    origin_country: Optional[str] = Field(default=None, pattern=r"^[A-Z]{2}$")
    managing_body: Optional[str] = Field(default=None, max_length=200)
    standard: Optional[str] = Field(default=None, max_length=200)
    quality_requirements: Optional[QualityRequirements] = None
    testing_body: Optional[str] = Field(default=None, max_length=200)
    standard_yield_kg_per_mu: Optional[float] = Field(default=None, gt=0, le=100000)
    area_description: Optional[str] = Field(default=None, max_length=20000)
    area_adcodes: Optional[list[Adcode]] = Field(default=None, max_length=500)

    def values(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True)
        if "quality_requirements" in data and data["quality_requirements"] is not None:
            data["quality_requirements"] = {k: v for k, v in data["quality_requirements"].items() if v}
        return data


class GICreateBody(GIFieldsBody):
    name_zh: Name
    kind: GIKind
    category: GICategory
    reason: Reason = "registered"


class GIAmendBody(GIFieldsBody):
    name_zh: Optional[Name] = None
    kind: Optional[GIKind] = None
    category: Optional[GICategory] = None
    reason: Reason
    expected_version: Optional[int] = Field(default=None, ge=1, le=2**31 - 1,
                                            description="refuse with 409 if the record moved on meanwhile")

    def values(self) -> dict[str, Any]:
        data = super().values()
        data.pop("reason", None)
        data.pop("expected_version", None)
        return {k: v for k, v in data.items() if v is not None or k in ("registration_date",)}


class GISearchQuery(Query):
    q: Optional[str] = Field(default=None, max_length=100, description="name in Chinese, pinyin or English")
    category: Optional[GICategory] = None
    kind: Optional[GIKind] = None
    status: Optional[GIStatus] = None
    region: Optional[Adcode] = Field(default=None, description="adcode; its sub-units are included")
    limit: int = Field(default=50, ge=1, le=500)
    offset: Offset = 0


class AsOfQuery(Query):
    as_of: Optional[dt.date] = Field(default=None, description="YYYY-MM-DD: the record as it stood at the end "
                                                               "of that day (China Standard Time)")


class GeoJSONGeometry(Strict):
    model_config = ConfigDict(extra="allow")
    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]


class AreaBody(Strict):
    geometry: dict[str, Any] = Field(description="GeoJSON Geometry, Feature or FeatureCollection in WGS-84")
    reason: Reason
    description: Optional[str] = Field(default=None, max_length=20000)


class PlotBody(Strict):
    gi_id: Id
    name: str = Field(min_length=1, max_length=120)
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon (WGS-84)")
    survey_year: int = Field(ge=1980, le=2100)


class PlotPatchBody(Strict):
    name: Optional[str] = Field(default=None, min_length=1, max_length=120)
    geometry: Optional[dict[str, Any]] = None
    survey_year: Optional[int] = Field(default=None, ge=1980, le=2100)


class AuthorizationBody(Strict):
    producer_id: Id
    gi_id: Id
    basis: AuthorizationBasis
    reason: Reason = "application"
    announcement_no: Optional[str] = Field(default=None, max_length=100)
    valid_from: Optional[dt.date] = None
    valid_until: Optional[dt.date] = None
    approve: bool = False


class TransitionBody(Strict):
    to: AuthorizationStatus
    reason: Reason
    announcement_no: Optional[str] = Field(default=None, max_length=100)


class AuthorizationQuery(Query):
    producer_id: Optional[Id] = None
    gi_id: Optional[Id] = None
    status: Optional[AuthorizationStatus] = None


class PointQuery(Query):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class PointsBody(Strict):
    points: list[tuple[float, float]] = Field(min_length=1, max_length=100000,
                                              description="[[lon, lat], ...] in WGS-84")

    @field_validator("points")
    @classmethod
    def _in_range(cls, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for i, (lon, lat) in enumerate(pts):
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError(f"point {i} ({lon}, {lat}) is not a WGS-84 lon/lat")
        return pts


class ProducerQuery(Query):
    q: Optional[str] = Field(default=None, max_length=100)
    adcode: Optional[Adcode] = None
    limit: int = Field(default=100, ge=1, le=500)
    offset: Offset = 0


class ProducerBody(Strict):
    name: str = Field(min_length=2, max_length=200)
    name_en: Optional[str] = Field(default=None, max_length=200)
    uscc: str = Field(min_length=18, max_length=18)
    adcode: Optional[Adcode] = None
    address: Optional[str] = Field(default=None, max_length=300)
    contact: Optional[str] = Field(default=None, max_length=200)
