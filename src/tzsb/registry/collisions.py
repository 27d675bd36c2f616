"""Adds that name keys held by records the caller may not access (another region, or another
source of a type the app sees masked).

Such an add is refused without saying which keys (``refusals.keys_held_elsewhere``): listing them
would let an app probe which ID numbers exist in other regions, a thousand guesses a request. The
keys are kept for the operator (``tzsb app collisions``), who can hand a record to its rightful
region (``tzsb record reassign``); an app that keeps colliding — a prober bisecting its guesses —
is locked out from every address, like repeated signature failures (7.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tzsb.clock import Clock
from tzsb.registry.lockout import Lockouts
from tzsb.store import Store, key_collisions


@dataclass(frozen=True, slots=True)
class CollisionPolicy:
    #: Colliding keys within ``window`` that lock the app out (a legitimate source meets a few:
    #: people who moved between regions; a prober bisecting a thousand guesses meets about ten).
    keys: int = 10
    window: timedelta = timedelta(hours=24)


class Collisions:
    def __init__(self, store: Store, clock: Clock, lockouts: Lockouts, policy: CollisionPolicy | None = None) -> None:
        self.store = store
        self.clock = clock
        self.lockouts = lockouts
        self.policy = policy or CollisionPolicy()

    def record(
        self, appid: str, client_addr: str, business: str, held: Sequence[tuple[str, str, str]], *, counts: bool
    ) -> datetime | None:
        """Keep an add's colliding keys (``(key, held region, held source)``); returns the end of
        the app's lock when these collisions lock it out.

        ``counts``: the keys are sensitive values (ID numbers) an app could not otherwise learn, so
        probing for them leads to a lock-out. Other keys (device codes, licence numbers) are kept
        for the operator only: their owner may simply have registered first from another region,
        and locking the rightful source out would punish the victim of a squatter.
        """
        now = self.clock.now()
        rows = [
            key_collisions.Collision(now.isoformat(), appid, client_addr, business, key, region, source, counts)
            for key, region, source in held
        ]
        with self.store.write() as connection:
            key_collisions.add(connection, rows)
            count = key_collisions.count_since(connection, appid, (now - self.policy.window).isoformat())
        if counts and count >= self.policy.keys:
            return self.lockouts.lock_app(appid, count)
        return None

    def acknowledge(self, appid: str) -> int:
        """The operator has seen the app's collisions (``tzsb app unlock``): they stop counting."""
        with self.store.write() as connection:
            return key_collisions.acknowledge(connection, appid)

    def listing(self, appid: str | None = None, limit: int = 100) -> list[key_collisions.Collision]:
        with self.store.read() as connection:
            return key_collisions.listing(connection, appid, limit)
