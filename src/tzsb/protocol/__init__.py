"""The spec's wire format: code tables, request/response messages and signing. No I/O."""
