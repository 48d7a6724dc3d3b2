"""Request bodies and query strings, validated strictly (unknown fields are refused)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Optional

from pydantic import ConfigDict, Field

from ..http.schemas import Absent, Adcode, Id, Offset, Query, Reason, Strict, Year
from ..models import AuthorizationBasis, AuthorizationStatus, GICategory, GIKind, GIStatus, OrgKind

Name = Annotated[str, Field(min_length=1, max_length=100)]


TotpCode = Annotated[Optional[str], Field(
    default=None, min_length=1, max_length=20,
    description="the 6-digit code of the authenticator app, or one of the recovery codes (XXXXX-XXXXX); needed "
                "when the account has two-factor sign-in")]


class LoginBody(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)
    totp: TotpCode = None
    token_name: str = Field(default="api", max_length=100)
    ttl_days: int = Field(default=30, ge=1, le=365)


class PasswordChangeBody(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200, description="the current password")
    new_password: str = Field(min_length=1, max_length=200,
                              description="the new password (the password rules of /api/v1/auth/password-rules)")
    totp: TotpCode = None
    token_name: str = Field(default="api", max_length=100)
    ttl_days: int = Field(default=30, ge=1, le=365)


class TokenBody(Strict):
    name: str = Field(min_length=1, max_length=100)
    ttl_days: int = Field(default=90, ge=1, le=3650)


class OrganisationBody(Strict):
    # A producer or printer needs its USCC, any other kind its adcode or a USCC to derive it from (refused with
    # 422 otherwise): stated in the schema too.
    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"if": {"properties": {"kind": {"enum": ["producer", "printer"]}}, "required": ["kind"]},
         "then": {"required": ["uscc"]}},
        {"anyOf": [{"required": ["uscc"]}, {"required": ["adcode"]}]}]})
    kind: OrgKind
    name: str = Field(min_length=2, max_length=200)
    name_en: Optional[str] = Field(default=None, max_length=200)
    uscc: str = Absent(min_length=18, max_length=18)
    adcode: Adcode = Absent()
    address: Optional[str] = Field(default=None, max_length=300)
    contact: Optional[str] = Field(default=None, max_length=200)


class UserBody(Strict):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=8, max_length=200, description="a first password, to be changed by its owner "
                          "at the first sign-in (the password rules of /api/v1/auth/password-rules)")
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
    # Left out: not given (on an amendment: unchanged). `null` is refused where the record cannot be without
    # a value (status, origin_country, quality_requirements and the adcode lists: it answered 500 before);
    # elsewhere it means "none" on a registration (an amendment ignores it, except for registration_date
    # and check_alert_threshold, which it clears).
    name_pinyin: Optional[str] = Field(default=None, max_length=200, pattern=r"[A-Za-z0-9]",
                                       description="the name in pinyin (Latin letters, tone marks allowed); "
                                                   "default: derived from name_zh")
    name_en: Optional[str] = Field(default=None, max_length=200)
    registration_no: Optional[str] = Field(default=None, max_length=100,
                                           description="announcement number or trademark registration number")
    registration_date: Optional[dt.date] = None
    legacy_agi_code: Optional[str] = Field(default=None, pattern=r"^AGI\d{4}-\d{2}-\d{4,5}$",
                                           description="old agricultural GI code, e.g. AGI2014-02-1467")
    status: GIStatus = Absent(description="default: registered")
    origin_country: str = Absent(pattern=r"^[A-Z]{2}$", description="ISO 3166 alpha-2; default CN")
    managing_body: Optional[str] = Field(default=None, max_length=200)
    standard: Optional[str] = Field(default=None, max_length=200)
    quality_requirements: QualityRequirements = Absent()
    testing_body: Optional[str] = Field(default=None, max_length=200)
    standard_yield_kg_per_mu: Optional[float] = Field(default=None, gt=0, le=100000)
    area_description: Optional[str] = Field(default=None, max_length=20000)
    area_adcodes: list[Adcode] = Absent(max_length=500)
    sales_adcodes: list[Adcode] = Absent(
        max_length=500,
        description="declared sales regions (adcodes, sub-units included); checks far outside them raise an alert")
    check_alert_threshold: Optional[int] = Field(
        default=None, ge=2, le=1_000_000,
        description="checks of one code before it is suspect of being copied (default: GI_CHECK_ALERT_THRESHOLD)")

    def values(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True)
        if "quality_requirements" in data and data["quality_requirements"] is not None:
            data["quality_requirements"] = {k: v for k, v in data["quality_requirements"].items() if v}
        return data


class GICreateBody(GIFieldsBody):
    # A foreign GI needs its origin_country, not CN (refused with 422 otherwise): stated in the schema too.
    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"kind": {"const": "foreign_gi"}}, "required": ["kind"]},
        "then": {"required": ["origin_country"], "properties": {"origin_country": {"not": {"const": "CN"}}}}})
    name_zh: Name
    kind: GIKind
    category: GICategory
    reason: Reason = "registered"


class GIAmendBody(GIFieldsBody):
    name_zh: Name = Absent()
    kind: GIKind = Absent()
    category: GICategory = Absent()
    reason: Reason
    expected_version: int = Absent(ge=1, le=2**31 - 1,
                                   description="refuse with 409 if the record moved on meanwhile")

    def values(self) -> dict[str, Any]:
        data = super().values()
        data.pop("reason", None)
        data.pop("expected_version", None)
        return {k: v for k, v in data.items() if v is not None or k in ("registration_date", "check_alert_threshold")}


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
    code: Optional[str] = Field(default=None, min_length=1, max_length=40, pattern=r"^\S(.*\S)?$",
                                description="the producer's own code for the plot, unique for that producer")
    name: str = Field(min_length=1, max_length=120)
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon (WGS-84)")
    survey_year: int = Field(ge=1980, le=2100)


class PlotPatchBody(Strict):
    """Only the fields sent change; none of them can be set to null (a plot always has all three)."""
    name: str = Absent(min_length=1, max_length=120)
    geometry: dict[str, Any] = Absent(description="GeoJSON Polygon or MultiPolygon (WGS-84)")
    survey_year: int = Absent(ge=1980, le=2100)


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


Lon = Annotated[float, Field(ge=-180, le=180)]
Lat = Annotated[float, Field(ge=-90, le=90)]


class PointsBody(Strict):
    points: list[tuple[Lon, Lat]] = Field(min_length=1, max_length=100000,
                                          description="[[lon, lat], ...] in WGS-84")


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


# --- the special-mark ledger ------------------------------------------------------------------

Serial16 = Annotated[str, Field(min_length=16, max_length=24, description="a mark serial, e.g. BBSH26000001234K "
                                                                           "(hyphens and spaces allowed)")]


class SerialRange(Strict):
    first: Serial16
    last: Optional[Serial16] = Field(default=None, description="defaults to first (one mark)")

    def pair(self) -> tuple[str, str]:
        return self.first, self.last or self.first


Ranges = Annotated[list[SerialRange], Field(min_length=1, max_length=1000)]


class QuotaOpenBody(Strict):
    producer_id: Id
    gi_id: Id
    year: Year
    reason: Reason = "annual opening from surveyed plots"


class QuotaQuery(Query):
    year: Optional[Year] = None
    producer_id: Optional[Id] = None
    gi_id: Optional[Id] = None


class AdjustmentBody(Strict):
    amount_g: int = Field(ge=-10**15, le=10**15, description="grams; negative to reduce")
    reason: Reason


class TransferBody(Strict):
    to_producer_id: Id
    amount_g: int = Field(gt=0, le=10**15)
    reason: Reason


class MarkRequestBody(Strict):
    gi_id: Id
    pack_size_g: int = Field(gt=0, le=1_000_000, description="grams per pack, e.g. 250")
    quantity: int = Field(gt=0, le=100_000_000)
    gtin: Optional[str] = Field(default=None, min_length=8, max_length=14)
    year: Optional[Year] = None
    note: Optional[str] = Field(default=None, max_length=1000)


class RequestQuery(Query):
    status: Optional[str] = Field(default=None, pattern="^(requested|approved|refused|cancelled)$")
    gi_id: Optional[Id] = None


class ApproveBody(Strict):
    printer_id: Optional[Id] = Field(default=None, description="place the print order at once")
    reason: Reason = "approved within quota"


class DecisionBody(Strict):
    reason: Reason


class PrintOrderBody(Strict):
    printer_id: Id


class PrintedBody(Strict):
    spoiled: list[SerialRange] = Field(default_factory=list, max_length=10000)
    note: Optional[str] = Field(default=None, max_length=1000)


class SpoiledBody(Strict):
    ranges: Ranges
    reason: Reason


class IssueBody(Strict):
    ranges: Optional[list[SerialRange]] = Field(default=None, max_length=1000,
                                                description="default: all of the printer's stock of the batch")


class LotBody(Strict):
    lot_no: str = Field(min_length=1, max_length=64)
    production_date: dt.date
    quantity: int = Field(gt=0, le=100_000_000, description="packs in the lot")
    pack_size_g: int = Field(gt=0, le=1_000_000)
    test_report_no: str = Field(min_length=1, max_length=100)
    testing_body: str = Field(min_length=1, max_length=200)
    test_passed: bool


class ActivationBody(Strict):
    ranges: Ranges
    lot: LotBody


class VoidBody(Strict):
    ranges: Ranges
    kind: Literal["voided", "lost", "stolen"]
    reason: Reason


class BatchQuery(Query):
    status: Optional[str] = Field(default=None, pattern="^(approved|ordered|printed|issued|closed)$")


class ReportQuery(Query):
    year: Optional[Year] = None
    gi_id: Optional[Id] = None
    producer_id: Optional[Id] = None
    printer_id: Optional[Id] = None
    format: Literal["json", "csv", "xlsx"] = "json"
    part: Literal["rows", "mismatches"] = "rows"


class ConsistencyQuery(Query):
    seq: int = Field(ge=0, le=2**62)
    hash: str = Field(pattern="^[0-9a-f]{64}$")


class EventsQuery(Query):
    after: int = Field(default=0, ge=0, le=2**62)
    limit: int = Field(default=100, ge=1, le=1000)


class CheckpointQuery(Query):
    limit: int = Field(default=50, ge=1, le=500)
    before_id: Optional[Id] = None
