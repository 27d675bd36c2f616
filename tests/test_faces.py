"""Package faces: each package's public names are its ``__all__``, and other packages import only those.

A change to a face is a change to what other packages (and the SDK's users) rely on: it has to be
made here on purpose.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import tzsb

SOURCE = Path(tzsb.__file__).parent

FACES: dict[str, list[str]] = {
    "tzsb.audit": [
        "WITHOUT_LOG_VARIABLE",
        "ArchiveError",
        "ArchiveFile",
        "ChainHead",
        "ChainProblem",
        "ChainReport",
        "ChainWatch",
        "InteractionLog",
        "LogEntry",
        "RefusalTally",
        "archive",
        "at_bound",
        "head",
        "verify",
    ],
    "tzsb.catalog": [
        "BusinessType",
        "Catalog",
        "CatalogueEntry",
        "FieldSpec",
        "FieldType",
        "MASKS",
        "catalog_pages",
        "default_mask",
        "division_name",
        "equipment_catalogue",
        "load_catalog",
        "parse_business_type",
        "samples",
    ],
    "tzsb.cli": [
        "main",
    ],
    "tzsb.client": [
        "ExchangeClient",
        "ExchangeResponse",
        "ResponseSignatureError",
        "build_request",
    ],
    "tzsb.exchange": [
        "Admission",
        "Admitted",
        "masker",
        "Answers",
        "CursorCodec",
        "DigestPool",
        "Exchange",
        "LocalExecution",
        "LogQueries",
        "PulledWrites",
        "ReadAhead",
        "Reassigned",
        "ReplayBounds",
        "RequestContext",
        "RoutedExecution",
        "UpstreamFailure",
        "is_id_or_mobile",
        "reassign_record",
        "record_history",
    ],
    "tzsb.monitor": [
        "Alert",
        "AlertLoop",
        "AlertWatcher",
        "Check",
        "NodeMetrics",
        "Readiness",
        "ReadinessProbe",
        "ReporterStatus",
        "evaluate",
        "must_report",
        "reporters",
    ],
    "tzsb.protocol": [
        "APPID_PATTERN",
        "Action",
        "BUSICODE_ALIAS",
        "BUSINESS_TYPES",
        "ENVELOPE",
        "ExchangeRequest",
        "FORM_CONTENT_TYPE",
        "NATIONAL",
        "PUBLIC_PURPOSE",
        "PURPOSES",
        "RESULT_FAILURE",
        "RESULT_SUCCESS",
        "SignAlgorithm",
        "TIMESTAMP",
        "canonical_params",
        "covers",
        "digest",
        "encode_response",
        "failure_datalist",
        "is_region_code",
        "parse_body",
        "parse_request",
        "region_prefix",
        "response_signed_params",
        "sign",
        "sign_string",
        "sm4_key",
        "split_busicode",
        "success_datalist",
        "verify",
        "verify_canonical",
    ],
    "tzsb.registry": [
        "Account",
        "AccountStore",
        "App",
        "AppRegistry",
        "AppSpec",
        "CollisionPolicy",
        "Collisions",
        "DIRECTIONS_FILE",
        "DirectionPolicy",
        "LockoutPolicy",
        "Lockouts",
        "MasterKey",
        "Party",
        "RateLimiter",
        "Role",
        "Service",
        "ServiceRegistry",
        "ServiceSpec",
        "SessionTokens",
        "check_password",
        "hash_password",
        "password_problem",
        "load_directions",
    ],
    "tzsb.rules": [
        "DUPLICATE_KEY",
        "BatchReport",
        "CompiledRules",
        "KeyLookup",
        "NaturalKeyHolder",
        "NaturalKeyLookup",
        "RULES_FILE",
        "RecordValidator",
        "RelatedLookup",
        "RelatedRecord",
        "RuleBook",
        "Severity",
        "Violation",
        "compile_rules",
        "compile_validator",
        "delete_faults",
        "modify_faults",
        "shipped_rule_sets",
    ],
    "tzsb.soap": [
        "CONTENT_TYPE",
        "UDDI",
        "UDDI_TYPES",
        "Binding",
        "Business",
        "KeyedReference",
        "Registry",
        "Service",
        "TModel",
        "inquire",
        "stable_key",
        "NAMESPACE",
        "SOAP_ACTION",
        "SoapFault",
        "is_soap",
        "json_body",
        "parse_request",
        "render_fault",
        "render_response",
        "wsdl",
    ],
    "tzsb.store": [
        "Connection",
        "Dialect",
        "EntryQuery",
        "NewRecords",
        "RecordQuery",
        "Store",
        "StoredRecord",
        "accounts",
        "apps",
        "driver_sql",
        "import_jobs",
        "interaction_log",
        "key_collisions",
        "leases",
        "links",
        "lockouts",
        "log_chain",
        "masked_copies",
        "natural_keys",
        "nonces",
        "open_store",
        "rate_windows",
        "records_read",
        "records_written",
        "refusal_tallies",
        "services",
    ],
    "tzsb.sync": [
        "DIRECTIONS",
        "FAULT_POINTS",
        "FAULT_VARIABLE",
        "IDENTITY_PREFIX",
        "Answer",
        "Link",
        "LinkFailure",
        "LinkRegistry",
        "LinkReport",
        "LinkSpec",
        "LinkStatus",
        "ParentSession",
        "SyncRunner",
        "SyncScheduler",
        "default_every_seconds",
        "default_purpose",
        "derived_random",
        "describe_every",
        "due",
        "parent_of",
        "parse_every",
    ],
    "tzsb.web": [
        "ReadTimeouts",
        "TLSOptions",
        "client_fingerprint",
        "create_app",
        "create_asgi",
        "http_protocol",
    ],
}


def _package_of(path: Path) -> str:
    """The package a module belongs to for this rule: ``tzsb.<first part>`` (top-level modules are their own)."""
    return f"tzsb.{path.relative_to(SOURCE).with_suffix('').parts[0]}"


@pytest.mark.parametrize("package", sorted(FACES))
def test_face_is_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(FACES[package])
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.{name}"


def test_every_package_has_a_face() -> None:
    packages = {f"tzsb.{path.parent.name}" for path in SOURCE.glob("*/__init__.py")}
    assert packages == set(FACES)


def test_imports_across_packages_go_through_faces() -> None:
    """``from tzsb.store.engine import X`` in another package reaches past the face;
    ``from tzsb.store import X`` does not."""
    reaching: list[str] = []
    for path in sorted(SOURCE.rglob("*.py")):
        own = _package_of(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] != "tzsb" or len(parts) < 3:
                    continue
                target = ".".join(parts[:2])
                if target != own:
                    reaching.append(f"{path.relative_to(SOURCE)}:{node.lineno} imports {name}")
    assert reaching == []
