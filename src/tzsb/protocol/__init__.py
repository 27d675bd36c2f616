"""The spec's wire format: code tables, request/response messages and signing. No I/O.

Other packages (and the client SDK) import from here only; the modules behind these names are private.
"""

from tzsb.protocol.codes import (
    BUSINESS_TYPES,
    PUBLIC_PURPOSE,
    PURPOSES,
    RESULT_FAILURE,
    RESULT_SUCCESS,
    Action,
    split_busicode,
)
from tzsb.protocol.messages import (
    APPID_PATTERN,
    BUSICODE_ALIAS,
    ENVELOPE,
    FORM_CONTENT_TYPE,
    TIMESTAMP,
    ExchangeRequest,
    encode_response,
    failure_datalist,
    parse_body,
    parse_request,
    response_signed_params,
    success_datalist,
)
from tzsb.protocol.regions import NATIONAL, covers, is_region_code, region_prefix
from tzsb.protocol.signing import (
    SignAlgorithm,
    canonical_params,
    digest,
    sign,
    sign_string,
    sm4_key,
    verify,
    verify_canonical,
)

__all__ = [
    "APPID_PATTERN",
    "BUSICODE_ALIAS",
    "BUSINESS_TYPES",
    "ENVELOPE",
    "FORM_CONTENT_TYPE",
    "NATIONAL",
    "PUBLIC_PURPOSE",
    "PURPOSES",
    "RESULT_FAILURE",
    "RESULT_SUCCESS",
    "TIMESTAMP",
    "Action",
    "ExchangeRequest",
    "SignAlgorithm",
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
]
