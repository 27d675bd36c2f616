"""The request pipeline: parse, authenticate, authorise, validate, execute, answer, log."""

from tzsb.exchange.pipeline import Exchange

__all__ = ["Exchange"]
