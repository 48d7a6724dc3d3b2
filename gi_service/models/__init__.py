"""All models, imported here so Alembic and the app see one metadata."""
from .accounts import ApiToken, OrgKind, Organisation, RecoveryCode, UnknownNameFailures, User
from .producers import Authorization, AuthorizationBasis, AuthorizationEvent, AuthorizationStatus, Plot
from .marks import (BatchStatus, IdempotencyRecord, LedgerCheckpoint, LedgerEvent, LedgerHead, Lot, LotStatus,
                    MarkBatch, MarkRange, MarkRequest, MarkState, QuotaAccount, QuotaEntry, RequestStatus,
                    SerialCounter)
from .scans import MarkCheck, ReplicationHeartbeat, Scan, ScanIdBlock, UAClass, Verdict
from .clues import AlertKind, Clue, ClueKind, CluePlace, ClueStatus, ConsumerReport, PlaceRole
from .supervision import (AnnualReport, AnnualReportStatus, Case, CaseEvent, CaseEvidence, CaseOutcome, CaseParty,
                          CasePartyRole, CaseStatus, CreditEntry, CreditEntryKind, Finding, FindingCode, FindingPhoto,
                          PremisesKind, SeriousViolator, ViolationKind)
from .audit import AuditCheckpoint, AuditHead, AuditRecord
from .registry import GI_FIELD_NAMES, GIAreaUnit, GICategory, GIKind, GIProduct, GIStatus, GIVersion, OriginArea
from .imports import ImportRun

__all__ = [
    "AuditCheckpoint", "AuditHead", "AuditRecord",
    "BatchStatus", "IdempotencyRecord", "LedgerCheckpoint", "LedgerEvent", "LedgerHead", "Lot", "LotStatus",
    "MarkBatch", "MarkRange", "MarkRequest", "MarkState", "QuotaAccount", "QuotaEntry", "RequestStatus",
    "SerialCounter",
    "ApiToken", "OrgKind", "Organisation", "RecoveryCode", "UnknownNameFailures", "User",
    "Authorization", "AuthorizationBasis", "AuthorizationEvent", "AuthorizationStatus", "Plot",
    "MarkCheck", "ReplicationHeartbeat", "Scan", "ScanIdBlock", "UAClass", "Verdict",
    "AlertKind", "Clue", "ClueKind", "CluePlace", "ClueStatus", "ConsumerReport", "PlaceRole",
    "AnnualReport", "AnnualReportStatus", "Case", "CaseEvent", "CaseEvidence", "CaseOutcome", "CaseParty",
    "CasePartyRole", "CaseStatus", "CreditEntry", "CreditEntryKind", "Finding", "FindingCode", "FindingPhoto",
    "PremisesKind", "SeriousViolator", "ViolationKind",
    "GI_FIELD_NAMES", "GIAreaUnit", "GICategory", "GIKind", "GIProduct", "GIStatus", "GIVersion", "OriginArea",
    "ImportRun",
]
