"""validate-cost: validating a 1,000-record 0101 batch (all rules in force) / storing it on SQLite."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import orjson
from bench.common import arguments, device, report

from tzsb.app import build_node, tune_runtime
from tzsb.clock import business_timestamp
from tzsb.exchange import writes
from tzsb.protocol.codes import Action
from tzsb.registry import AppSpec, MasterKey
from tzsb.settings import load_settings, write_config


def main() -> None:
    options = arguments(__doc__ or "", batches=20, batch=1000)
    batches = 3 if options.quick else options.batches
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(Path(folder), environ={}, level="province", region="330000")
        MasterKey.generate().write(settings.master_key_path)
        write_config(settings)
        node = build_node(settings)
        tune_runtime()  # as `tzsb serve` does
        app, _ = node.registry.create(AppSpec("bench", "330000", frozenset({"140101"}), frozenset({"01"})))
        business = node.catalog["0101"]
        validator = node.rules.current().validators["0101"]
        validating = storing = 0.0
        for number in range(batches):
            # Parsed from JSON, as the node receives them: fresh string objects, none shared or interned.
            records = orjson.loads(
                orjson.dumps([device(n) for n in range(number * options.batch, (number + 1) * options.batch)])
            )
            began = time.perf_counter()
            report_ = validator.check_batch(records)
            validating += time.perf_counter() - began
            assert not report_.errors, report_.errors[:1]
            context = writes.WriteContext(business, validator, app, business_timestamp(node.clock.now()))
            began = time.perf_counter()
            with node.store.write() as connection:
                writes.apply(connection, Action.ADD, records, context)
            storing += time.perf_counter() - began
        node.close()
    per_validate = validating / batches * 1000
    per_store = storing / batches * 1000
    report(
        "validate-cost",
        per_validate,
        "ms per 1,000 records",
        per_store,
        "ratio < 1",
        [
            ("batches", f"{batches} x {options.batch} records (0101, every rule of the shipped set)"),
            ("validate", f"{per_validate:.1f} ms per batch"),
            ("store (one transaction, SQLite)", f"{per_store:.1f} ms per batch"),
        ],
    )


if __name__ == "__main__":
    main()
