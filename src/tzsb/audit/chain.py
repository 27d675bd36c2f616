"""Tamper evidence of the interaction log: verify its hash chain, show its head, archive old entries.

Every entry carries ``chain_seq`` (1, 2, … in the order entries were appended) and a digest over
the previous entry's digest and its own fields (``store.log_chain``). Verification recomputes the
chain from the first entry — through the archive files, then the live table — and names the first
entry that was edited, deleted or moved. Entries removed from the end leave no gap: they are caught
against the head the node keeps, and against a head an operator kept elsewhere (``tzsb audit head``).

Archiving moves the oldest entries (those before a date) to compressed daily files, each holding
its chain heads, and removes them from the table; the table's chain then starts after the last
archived entry. A file is complete on disk before any row it holds is removed.
"""

from __future__ import annotations

import gzip
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from tzsb.store import Store, interaction_log, log_chain

#: Entries read per page when walking the chain.
PAGE: Final = 2000
#: Archive files: ``log-<date>-<first chain_seq>.jsonl.gz`` (dates and numbers sort as text).
ARCHIVE_GLOB: Final = "log-*.jsonl.gz"


@dataclass(frozen=True, slots=True)
class ChainHead:
    """A position in the chain: the entry ``seq`` and its digest (``seq`` 0: before the first entry)."""

    seq: int
    digest: str

    def text(self) -> str:
        return f"{self.seq}:{self.digest}"

    @classmethod
    def parse(cls, text: str) -> ChainHead | None:
        """``SEQ:DIGEST`` as ``tzsb audit head`` prints it; None when malformed."""
        seq, _, digest = text.strip().partition(":")
        digest = digest.lower()
        if not seq.isdigit() or len(digest) != 64 or any(char not in "0123456789abcdef" for char in digest):
            return None
        return cls(int(seq), digest)


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first place the chain does not hold."""

    #: "edited", "deleted", "reordered", "truncated" (entries missing at the end), "head" (the node's
    #: head or a kept head does not match), "archive" (an archive file is missing or unreadable).
    kind: str
    #: The chain number of the entry concerned (the first missing one, for "deleted" / "truncated").
    seq: int
    message: str
    #: The entry's row id in the live table, or the archive file holding it.
    where: str = ""


@dataclass(slots=True)
class ChainReport:
    ok: bool = True
    entries: int = 0
    archived_entries: int = 0
    archive_files: int = 0
    head: ChainHead = field(default_factory=lambda: ChainHead(0, log_chain.GENESIS))
    problem: ChainProblem | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Walker:
    """Recomputes the chain entry by entry; stops at the first problem."""

    def __init__(self, start: ChainHead) -> None:
        self.position = start
        self.problem: ChainProblem | None = None
        #: Recent digests by chain number: a mismatch that fits another one of them is a move.
        self._recent: OrderedDict[str, int] = OrderedDict()

    def feed(self, row: dict[str, Any], where: str, nearby: Iterable[str] = ()) -> bool:
        """Check the next entry; False (and ``problem`` set) when it breaks the chain. ``nearby``: the
        stored digests of the entries around it, to recognise one that was moved."""
        seq = int(row["chain_seq"])
        expected = self.position.seq + 1
        if seq != expected:
            self.problem = ChainProblem(
                "deleted",
                expected,
                f"第 {expected} 条日志缺失（已被删除）；其后为第 {seq} 条 / entry {expected} is missing (deleted); "
                f"the next one present is entry {seq}",
                where,
            )
            return False
        # As stored first (a walk checks every entry); converted as the definition says only when that
        # does not fit, before anything is called a problem.
        digest = log_chain.stored_digest_of(self.position.digest, row)
        if digest != row["digest"]:
            digest = log_chain.digest_of(self.position.digest, row)
        if digest != row["digest"]:
            candidates = {*self._recent, *nearby} - {self.position.digest}
            moved = any(log_chain.digest_of(other, row) == row["digest"] for other in candidates)
            kind, zh, en = (
                ("reordered", "顺序被调换或移动", "was moved (reordered)")
                if moved
                else ("edited", "内容被修改", "was edited")
            )
            self.problem = ChainProblem(
                kind,
                seq,
                f"第 {seq} 条日志{zh}，摘要与链不符 / entry {seq} {en}: its digest does not fit the chain",
                where,
            )
            return False
        self._recent[self.position.digest] = self.position.seq
        if len(self._recent) > 4 * PAGE:
            # (An OrderedDict: a dict's first key, after many popped, is found by a scan past them.)
            self._recent.popitem(last=False)
        self.position = ChainHead(seq, digest)
        return True


def archive_files(directory: Path) -> list[Path]:
    """The archive files in ``directory``, oldest first (by their first chain number)."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob(ARCHIVE_GLOB), key=lambda path: int(path.name.rsplit("-", 1)[1].split(".")[0]))


def _read_archive(path: Path, trailer: dict[str, Any]) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """An archive file's first line, and its entries (its last line is put in ``trailer`` once read)."""
    handle = gzip.open(path, "rb")  # noqa: SIM115 - closed once its entries are read
    header = orjson.loads(handle.readline())

    def entries() -> Iterator[dict[str, Any]]:
        with handle:
            for line in handle:
                item = orjson.loads(line)
                if item.get("end") is True:
                    trailer.update(item)
                    return
                yield item

    return header, entries()


def verify(store: Store, archives: Path | None = None, kept: ChainHead | None = None) -> ChainReport:
    """Recompute the chain: the archive files in ``archives`` (when given and present), then the live
    table, up to the head the node holds; and check ``kept`` (a head kept elsewhere) lies on it."""
    report = ChainReport()
    with store.read() as connection:
        state = log_chain.state(connection)
    walker = _Walker(ChainHead(0, log_chain.GENESIS))
    kept_found = kept is None or (kept.seq == 0 and kept.digest == log_chain.GENESIS)

    def check_kept() -> None:
        nonlocal kept_found
        if kept is not None and walker.position.seq == kept.seq:
            kept_found = walker.position.digest == kept.digest

    files = archive_files(archives) if archives is not None else []
    if not files and state.archived_seq:
        # No archive to read: the live chain is taken to start where the node says it archived up to.
        walker.position = ChainHead(state.archived_seq, state.archived_digest)
    for path in files:
        report.archive_files += 1
        try:
            trailer: dict[str, Any] = {}
            header, rows = _read_archive(path, trailer)
            if (
                int(header["first_seq"]) != walker.position.seq + 1
                or header["previous_digest"] != walker.position.digest
            ):
                report.problem = ChainProblem(
                    "archive",
                    walker.position.seq + 1,
                    f"归档文件 {path.name} 与前一段日志接不上（缺少第 {walker.position.seq + 1} 条起的归档？） / "
                    f"archive {path.name} does not continue the chain (is the file with entry "
                    f"{walker.position.seq + 1} missing?)",
                    str(path),
                )
                break
            for row in rows:
                if not walker.feed(row, str(path)):
                    break
                report.archived_entries += 1
                check_kept()
        except (OSError, EOFError, ValueError, KeyError, orjson.JSONDecodeError) as exc:
            report.problem = ChainProblem(
                "archive",
                walker.position.seq + 1,
                f"归档文件 {path.name} 无法读取：{exc} / archive {path.name} cannot be read: {exc}",
                str(path),
            )
            break
        if walker.problem is not None:
            break
        if walker.position != ChainHead(int(trailer.get("last_seq", -1)), str(trailer.get("last_digest"))):
            report.problem = ChainProblem(
                "archive",
                walker.position.seq,
                f"归档文件 {path.name} 的条目与其记录的链头不符 / the entries of archive {path.name} do not end at "
                "the head the file records",
                str(path),
            )
            break
    if report.problem is None and walker.problem is None and files:
        boundary = ChainHead(state.archived_seq, state.archived_digest)
        if walker.position != boundary:
            report.problem = ChainProblem(
                "archive",
                walker.position.seq + 1,
                f"归档文件止于第 {walker.position.seq} 条，而节点已归档至第 {state.archived_seq} 条 / the archive "
                f"files end at entry {walker.position.seq}, the node archived up to entry {state.archived_seq}",
                str(archives),
            )

    if report.problem is None and walker.problem is None:
        report.entries = _walk_table(store, walker, state.head_seq, check_kept)
        if walker.problem is None:
            report.problem = _end_problem(walker.position, state)
    if walker.problem is not None and report.problem is None:
        report.problem = walker.problem
    if report.problem is None and not kept_found:
        assert kept is not None
        if kept.seq > walker.position.seq:
            report.problem = ChainProblem(
                "truncated",
                walker.position.seq + 1,
                f"保存的链头为第 {kept.seq} 条，日志只到第 {walker.position.seq} 条：其后的条目被删除 / "
                f"the kept head is entry {kept.seq} but the log ends at entry {walker.position.seq}: "
                "entries after it were removed",
            )
        else:
            report.problem = ChainProblem(
                "head",
                kept.seq,
                f"第 {kept.seq} 条日志的摘要与保存的链头不符：日志被改写 / entry {kept.seq} does not have the digest "
                "of the kept head: the log was rewritten",
            )
    report.head = walker.position
    report.ok = report.problem is None
    return report


def _walk_table(store: Store, walker: _Walker, upto_seq: int, each: Callable[[], None] | None = None) -> int:
    """Feed ``walker`` the live entries after its position up to ``upto_seq``, a page at a time, until
    one breaks the chain; returns how many held (``each`` is called after each of them)."""
    held = 0
    after = walker.position.seq
    while after < upto_seq:
        with store.read() as connection:
            page = interaction_log.chain_page(connection, after, upto_seq, PAGE)
        if not page:
            break
        nearby = [str(row["digest"]) for row in page]
        for row in page:
            if not walker.feed(row, f"id {row['id']}", nearby):
                return held
            held += 1
            if each is not None:
                each()
        after = int(page[-1]["chain_seq"])
    return held


def _end_problem(reached: ChainHead, state: log_chain.ChainState) -> ChainProblem | None:
    """What is wrong when the walk through the entries ended at ``reached`` and the node's head is
    elsewhere: entries removed from the end, or a head that does not match them."""
    if reached == ChainHead(state.head_seq, state.head_digest):
        return None
    if reached.seq < state.head_seq:
        return ChainProblem(
            "truncated",
            reached.seq + 1,
            f"第 {reached.seq + 1} 至 {state.head_seq} 条日志缺失（末尾被删除） / entries {reached.seq + 1} to "
            f"{state.head_seq} are missing (removed from the end)",
        )
    return ChainProblem(
        "head", state.head_seq, "节点记录的链头与日志不符 / the node's chain head does not match its entries"
    )


def head(store: Store) -> ChainHead:
    """The chain's head: the last entry appended and its digest."""
    with store.read() as connection:
        state = log_chain.state(connection)
    return ChainHead(state.head_seq, state.head_digest)


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    path: Path
    first_seq: int
    last_seq: int
    entries: int


class ArchiveError(Exception):
    """Archiving stopped: the chain is broken in the entries it was to archive."""


def archive(store: Store, before: str, directory: Path) -> list[ArchiveFile]:
    """Move the entries appended before ``before`` (an ``at`` bound, e.g. ``2026-12-01T00:00:00``)
    to compressed daily files in ``directory`` and remove them from the table.

    Entries go in chain order and archiving stops at the first entry at or after ``before``, so that
    the files and the table always hold one unbroken chain. Each entry is verified as it is written
    (a page at a time: a day of entries never sits in memory); a broken chain stops the archive
    (``ArchiveError``) before anything is removed.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    written: list[ArchiveFile] = []
    while True:
        with store.read() as connection:
            state = log_chain.state(connection)
        start = ChainHead(state.archived_seq, state.archived_digest)
        done = _archive_day(store, start, before, state.head_seq, directory)
        if done is None:
            return written
        with store.write() as connection:
            # The archive boundary must not have moved meanwhile (another archive run did the same).
            if log_chain.state(connection, lock=True).archived_seq != start.seq:
                continue
            interaction_log.remove_chained(connection, done.first_seq, done.last_seq)
            log_chain.mark_archived(connection, done.last_seq, done.last_digest)
        written.append(ArchiveFile(done.path, done.first_seq, done.last_seq, done.entries))


@dataclass(frozen=True, slots=True)
class _Written:
    path: Path
    first_seq: int
    last_seq: int
    last_digest: str
    entries: int


def _archive_day(store: Store, start: ChainHead, before: str, head_seq: int, directory: Path) -> _Written | None:
    """Write the entries after ``start`` that share the first one's date, up to the first one at or
    after ``before`` or of another date, to that date's file; None when there is none to archive."""
    walker = _Walker(start)
    day = ""
    entries = 0
    after = start.seq
    output: _ArchiveWriter | None = None
    try:
        while after < head_seq:
            with store.read() as connection:
                rows = interaction_log.chain_page(connection, after, head_seq, PAGE)
            if not rows:
                break
            for row in rows:
                at = str(row["at"])
                if at >= before or (day and at[:10] != day):
                    after = head_seq
                    break
                if not walker.feed(row, f"id {row['id']}"):
                    assert walker.problem is not None
                    raise ArchiveError(walker.problem.message)
                if output is None:
                    day = at[:10]
                    output = _ArchiveWriter(directory / f"log-{day}-{start.seq + 1:012d}.jsonl.gz", start)
                output.write(row)
                entries += 1
            else:
                after = int(rows[-1]["chain_seq"])
        if output is None:
            return None
        output.finish(walker.position, entries)
        return _Written(output.path, start.seq + 1, walker.position.seq, walker.position.digest, entries)
    finally:
        if output is not None:
            output.discard()


class _ArchiveWriter:
    """One archive file, written beside its final name and renamed into place once on disk.

    Line 1: the chain position it continues from; then one entry per line; last line: where it ends.
    """

    def __init__(self, path: Path, start: ChainHead) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        # The log names apps, addresses and what they did: the files are their owner's only.
        descriptor = os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._raw = open(descriptor, "wb")  # noqa: SIM115 - closed by finish or discard
        self._compressed = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0)
        self._compressed.write(
            orjson.dumps({
                "format": "tzsb-audit-archive/1", "algorithm": log_chain.ALGORITHM,
                "first_seq": start.seq + 1, "previous_digest": start.digest,
            }) + b"\n"
        )  # fmt: skip
        self._done = False

    def write(self, row: dict[str, Any]) -> None:
        self._compressed.write(orjson.dumps(row) + b"\n")

    def finish(self, last: ChainHead, entries: int) -> None:
        self._compressed.write(
            orjson.dumps({"end": True, "last_seq": last.seq, "last_digest": last.digest, "entries": entries}) + b"\n"
        )
        self._compressed.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self._partial, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._done = True

    def discard(self) -> None:
        """Remove the partial file of an archive that did not finish."""
        if self._done:
            return
        self._compressed.close()
        self._raw.close()
        self._partial.unlink(missing_ok=True)


class ChainWatch:
    """Verifies the chain as it grows: each check recomputes the entries appended since the last one,
    and the whole chain again every ``full_every`` seconds (an edit of an entry already checked).
    A problem, once found, holds until a full verification passes again."""

    def __init__(self, store: Store, full_every: float = 3600.0) -> None:
        self.store = store
        self.full_every = full_every
        self.problem: ChainProblem | None = None
        self._position: ChainHead | None = None
        self._full_at = 0.0

    def check(self) -> ChainProblem | None:
        """The chain's first problem, or None when it holds."""
        now = time.monotonic()
        with self.store.read() as connection:
            state = log_chain.state(connection)
        full = self.problem is not None or self._position is None or now - self._full_at >= self.full_every
        if not full and self._position is not None and self._position.seq < state.archived_seq:
            full = True  # archived past the last check: start again from the archive boundary
        if full:
            report = verify(self.store)
            self._full_at = now
            self.problem = report.problem
            self._position = report.head
            return self.problem
        assert self._position is not None
        walker = _Walker(self._position)
        _walk_table(self.store, walker, state.head_seq)
        self.problem = walker.problem or _end_problem(walker.position, state)
        if self.problem is not None:
            return self.problem
        self._position = walker.position
        return None
