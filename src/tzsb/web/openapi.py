"""The OpenAPI 3 description of the node's HTTP surface, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from tzsb import __version__
from tzsb.errors import ErrorCode

_STRING = {"type": "string"}


def openapi(service_path: str) -> dict[str, Any]:
    envelope = {
        "type": "object",
        "required": ["appid", "action", "busilist", "random", "sign"],
        # busicode, or its appendix A.1.1 spelling basicode: exactly one of them.
        "oneOf": [
            {"required": ["busicode"], "not": {"required": ["basicode"]}},
            {"required": ["basicode"], "not": {"required": ["busicode"]}},
        ],
        "additionalProperties": False,
        "properties": {
            "appid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "busicode": {"type": "string", "pattern": "^[0-9]{6}$", "description": "purpose (table 6) + business (7)"},
            "basicode": {"type": "string", "pattern": "^[0-9]{6}$", "description": "alias of busicode (A.1.1)"},
            "action": {"type": "string", "enum": ["01", "02", "03", "04"]},
            "busilist": {
                "oneOf": [
                    {"type": "string", "description": "a JSON array as text"},
                    {"type": "array", "items": {"type": "object"}},
                ]
            },
            "random": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
            "sign": {"type": "string", "pattern": "^[0-9A-Fa-f]+$"},
            "timestamp": {"type": "string", "pattern": "^[0-9]{10}$"},
        },
    }
    answer = {
        "type": "object",
        "required": ["appid", "busicode", "datalist", "random", "sign"],
        "properties": {
            "appid": _STRING,
            "busicode": _STRING,
            "random": _STRING,
            "sign": _STRING,
            "datalist": {
                "type": "object",
                "required": ["result", "message"],
                "properties": {
                    "result": {"type": "string", "enum": ["0001", "0000"]},
                    "message": _STRING,
                    "code": {"type": "string", "enum": [code.value for code in ErrorCode]},
                    "busilist": {"type": "array"},
                },
            },
        },
    }
    health = {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
            # The rest only for callers in health_details_from.
            "version": _STRING,
            "level": _STRING,
            "region": _STRING,
            "interface": _STRING,
            "business_types": {"type": "array", "items": _STRING},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "tzsb-exchange node",
            "version": __version__,
            "description": "特种设备安全监管信息共享接口规范（试行 V1.1）: the signed exchange interface.",
        },
        "paths": {
            service_path: {
                "post": {
                    "summary": "Add, modify, delete or query records (spec 6.3, appendix A)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": envelope},
                            "application/x-www-form-urlencoded": {"schema": envelope},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Answer; result 0000 with a code on refusal",
                            "content": {"application/json": {"schema": answer}},
                        },
                        "413": {
                            "description": "Body over the node's limit (code E_LIMIT)",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "431": {
                            "description": "Request line and headers over the node's max_header_bytes (default "
                            "16 KiB); the connection is closed and the request never handled",
                        },
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Readiness",
                    "description": "Callers outside the node's health_details_from networks (default loopback) "
                    "get only the status; listed callers also get the version, level, region and business types.",
                    "responses": {
                        "200": {"description": "ready", "content": {"application/json": {"schema": health}}},
                        "503": {
                            "description": "database unavailable",
                            "content": {"application/json": {"schema": health}},
                        },
                    },
                }
            },
        },
    }
