"""Who may call the node: apps, their secrets and grants; console accounts; lock-outs, key
collisions and rate limits; the providers requests are routed to."""

from tzsb.registry.access import DIRECTIONS_FILE, DirectionPolicy, Party, load_directions
from tzsb.registry.accounts import (
    Account,
    AccountStore,
    Role,
    SessionTokens,
    check_password,
    hash_password,
    password_problem,
)
from tzsb.registry.apps import App, AppRegistry, AppSpec
from tzsb.registry.collisions import CollisionPolicy, Collisions
from tzsb.registry.keys import MasterKey
from tzsb.registry.lockout import LockoutPolicy, Lockouts
from tzsb.registry.ratelimit import RateLimiter
from tzsb.registry.services import Service, ServiceRegistry, ServiceSpec

__all__ = [
    "DIRECTIONS_FILE",
    "Account",
    "AccountStore",
    "App",
    "AppRegistry",
    "AppSpec",
    "CollisionPolicy",
    "Collisions",
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
    "load_directions",
    "password_problem",
]
