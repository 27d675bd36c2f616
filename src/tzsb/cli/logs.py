"""The node's log lines on stderr: its own (``tzsb.*``) and uvicorn's, one format for both.

uvicorn's ``log_level`` option configures only uvicorn's loggers, so without this the node's own
messages (rules reloaded, a rules file rejected, a failed read-ahead) were dropped. ``log_config``
is a ``logging.config.dictConfig`` document: uvicorn applies it in every worker process too.
"""

from __future__ import annotations

import logging
import logging.config
import time
from typing import Any, Final

import orjson

_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class UTCFormatter(logging.Formatter):
    """``2026-12-04T23:59:59.123Z INFO tzsb.rules.ruleset: rules reloaded …``: UTC, ISO 8601."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{moment}.{int(record.msecs):03d}Z"


class JSONFormatter(UTCFormatter):
    """One JSON object per line (time, level, logger, message, and the exception when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode("utf-8")


def log_config(level: str = "info", form: str = "text") -> dict[str, Any]:
    """The dictConfig document for ``tzsb serve``: ``level`` (debug, info, warning, error) for the
    node's loggers and uvicorn's, ``form`` text or json, everything on stderr."""
    formatter: dict[str, Any] = {"()": f"{__name__}.UTCFormatter", "fmt": _TEXT_FORMAT}
    if form == "json":
        formatter = {"()": f"{__name__}.JSONFormatter"}
    handler = {"class": "logging.StreamHandler", "formatter": "node", "stream": "ext://sys.stderr"}
    named = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"node": formatter},
        "handlers": {"stderr": handler},
        "loggers": {
            "tzsb": {"handlers": ["stderr"], "level": named, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": named, "propagate": False},
            "uvicorn.error": {"level": named},
            # The interaction log is the node's record of requests; uvicorn's access lines stay off.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def configure(level: str = "info", form: str = "text") -> None:
    """Apply ``log_config`` to this process (commands other than ``serve``, and ``serve`` itself)."""
    logging.config.dictConfig(log_config(level, form))
