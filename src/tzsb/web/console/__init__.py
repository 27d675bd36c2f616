"""The operators' web console under ``/console/`` (spec 7.1.2: data entered through web pages after
an account signs in): sign in, the dashboard, data entry, records and the interaction log.

Server-rendered in Chinese (Jinja2), every asset served by the node. Every route checks the
account's role (``registry.accounts.PERMISSIONS``) and region scope; every form carries a CSRF
token bound to the session. A record entered here goes through the same pipeline as an interface
call (signature, grants, region, rules, claim, log, change feed), signed for the account's own
console app ``console-<username>``, so the log names who entered it.
"""

from __future__ import annotations

from tzsb.web.console.routes import console_routes

__all__ = ["console_routes"]
