"""Importing a CSV or XLSX file of records from the console (导入): templates with Chinese column
headers, every row checked by the same rules as the interface, a report by row and field, and the
import itself through the exchange pipeline, in a background thread whose progress every worker
can show (``store.import_jobs``).

Files are parsed defensively: XLSX through openpyxl with defusedxml present (no entities, no DTDs),
its ZIP members' declared sizes capped before anything is inflated, formulas refused rather than
evaluated (a formula cell is a row error), and a cap on rows.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any, Final

import openpyxl
import orjson
from openpyxl.styles import Font

from tzsb.catalog import BusinessType, FieldType
from tzsb.clock import Clock
from tzsb.errors import ExchangeError
from tzsb.protocol import RESULT_SUCCESS, covers
from tzsb.rules import DUPLICATE_KEY, BatchReport
from tzsb.store import Store, import_jobs

logger = logging.getLogger(__name__)

#: The largest file accepted.
MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024
#: The most an XLSX may inflate to (its members' declared sizes, summed), against ZIP bombs.
MAX_INFLATED_BYTES: Final = 400 * 1024 * 1024
MAX_ROWS: Final = 1_000_000
#: Rows checked between progress updates, and records per 01 request of the import.
CHUNK: Final = 1_000
#: Report items kept (the counts are exact; the list shows the first ones).
MAX_REPORT_ITEMS: Final = 2_000

MODES: Final = {
    "check": "仅校验，不导入 / check only",
    "clean": "全部无误时导入 / import only if every row is valid",
    "valid_rows": "仅导入有效行 / import the valid rows only",
}


#: A running job whose progress has not moved for this long has lost its thread.
STALLED: Final = timedelta(minutes=10)
HELD_ELSEWHERE: Final = (
    "文件中有记录的主键已被您无权访问的记录占用（其他区域或其他数据源），未导入任何记录；如这些记录应由您报送，"
    "请联系节点管理员核实并转移 / some keys of the file belong to records you may not access (another region or "
    "source): nothing imported. If the records are yours, ask the node's administrator to reassign them"
)
INTERRUPTED: Final = (
    "节点在导入过程中重启，导入已中断；已导入的记录见下方，请重新上传剩余的行 / the node restarted during the "
    "import: it stopped there; re-upload the rows not imported"
)


class FileRefused(Exception):
    """The file as a whole cannot be read (in Chinese and English)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its number in the file (the header is row 1) and its non-empty values."""

    number: int
    values: dict[str, str]
    #: Problems found while reading it (a formula): field → message.
    problems: dict[str, str]


def header_names(business: BusinessType) -> list[str]:
    """The template's column headers: each data element's Chinese name."""
    return [spec.name for spec in business.fields]


def template_csv(business: BusinessType) -> bytes:
    """A CSV template: the header row, UTF-8 with a BOM so that Excel reads the Chinese."""
    text = io.StringIO()
    csv.writer(text).writerow(header_names(business))
    return ("\ufeff" + text.getvalue()).encode("utf-8")


def template_xlsx(business: BusinessType) -> bytes:
    """An XLSX template: the header row on 数据, and every data element explained on 说明."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "数据"
    sheet.append(header_names(business))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    notes = book.create_sheet("说明")
    notes.append(["列名", "数据项代码", "类型", "长度", "必填", "代码表", "说明"])
    for spec in business.fields:
        codes = "；".join(f"{code} {meaning}" for code, meaning in spec.codes.items())
        notes.append([
            spec.name, spec.code, spec.type.value, spec.length or "", "是" if spec.required else "",
            codes, spec.description,
        ])  # fmt: skip
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()


def _columns(business: BusinessType, headers: list[str]) -> list[str | None]:
    """The field code of each column (by Chinese name or by code); FileRefused for unknown headers."""
    by_name = {spec.name: spec.code for spec in business.fields}
    found: list[str | None] = []
    unknown: list[str] = []
    for header in headers:
        name = header.strip()
        if not name:
            found.append(None)
        elif name in by_name:
            found.append(by_name[name])
        elif business.field(name) is not None:
            found.append(name)
        else:
            found.append(None)
            unknown.append(name)
    if unknown:
        listed = "、".join(unknown[:10])
        raise FileRefused(
            f"表头中有本业务类型没有的列：{listed} / columns not in business type {business.code}: {listed}"
        )
    if business.primary_key not in found:
        key = business.by_code[business.primary_key].name
        raise FileRefused(f"缺少主键列“{key}” / the key column {business.primary_key} is missing")
    return found


def _text(value: Any, kind: FieldType) -> str:
    """A cell's value as the interface's text."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d") if kind is FieldType.DATE else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value).strip()


def read_rows(business: BusinessType, file_name: str, data: bytes) -> Iterator[Row]:
    """The file's data rows; FileRefused when it cannot be read as a CSV or XLSX of this type."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise FileRefused(f"文件超过 {MAX_UPLOAD_BYTES // 1024 // 1024} MB / the file is larger than allowed")
    if file_name.lower().endswith(".xlsx") or data[:4] == b"PK\x03\x04":
        yield from _xlsx_rows(business, data)
    else:
        yield from _csv_rows(business, data)


def _csv_rows(business: BusinessType, data: bytes) -> Iterator[Row]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")  # what Excel saves in a Chinese Windows
        except UnicodeDecodeError:
            raise FileRefused("文件既不是 UTF-8 也不是 GB18030 编码 / the file is neither UTF-8 nor GB18030") from None
    if "\x00" in text:
        raise FileRefused("文件不是文本 CSV / the file is not a text CSV")
    reader = csv.reader(io.StringIO(text, newline=""))
    headers = next(reader, None)
    if headers is None:
        raise FileRefused("文件是空的 / the file is empty")
    columns = _columns(business, headers)
    for number, cells in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            raise FileRefused(f"超过 {MAX_ROWS} 行 / more than {MAX_ROWS} rows")
        values = {
            code: cell.strip() for code, cell in zip(columns, cells, strict=False) if code is not None and cell.strip()
        }
        if values:
            yield Row(number, values, {})


def _xlsx_rows(business: BusinessType, data: bytes) -> Iterator[Row]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(member.file_size for member in archive.infolist()) > MAX_INFLATED_BYTES:
                raise FileRefused("XLSX 解压后过大 / the XLSX inflates past the limit")
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except FileRefused:
        raise
    except Exception:
        raise FileRefused(
            "无法读取 XLSX 文件（已损坏或不是 XLSX） / the XLSX cannot be read (damaged, or not XLSX)"
        ) from None
    try:
        sheet = book.worksheets[0]
        # The sheet's own <dimension> is whatever the file says (a forged "A1:A1" would hide every
        # row but the first in read-only mode): the rows are read as they are.
        sheet.reset_dimensions()
        rows = sheet.iter_rows()
        header = next(rows, None)
        if header is None:
            raise FileRefused("文件是空的 / the file is empty")
        columns = _columns(
            business, [_text(cell.value, FieldType.STRING) if cell.value is not None else "" for cell in header]
        )
        kinds = {spec.code: spec.type for spec in business.fields}
        for number, cells in enumerate(rows, start=2):
            if number - 1 > MAX_ROWS:
                raise FileRefused(f"超过 {MAX_ROWS} 行 / more than {MAX_ROWS} rows")
            values: dict[str, str] = {}
            problems: dict[str, str] = {}
            for code, cell in zip(columns, cells, strict=False):
                if code is None or cell.value is None:
                    continue
                if getattr(cell, "data_type", "") == "f":
                    problems[code] = "单元格是公式，请填写数值本身 / a formula: enter the value itself"
                    continue
                text = _text(cell.value, kinds[code])
                if text:
                    values[code] = text
            if values or problems:
                yield Row(number, values, problems)
    finally:
        book.close()


Send = Callable[[list[dict[str, str]]], dict[str, Any]]
#: A batch's validation with the store look-ups an add makes, and whether a key of it is held by a
#: record the importer may not access (``LocalExecution.preflight_add``).
#: Its second argument: the batch's indexes already known not to be sent (not looked for).
Preflight = Callable[[list[dict[str, str]], set[int]], tuple[BatchReport, bool]]


@dataclass(frozen=True, slots=True)
class _Work:
    """What one import job works on, and how it checks and sends its batches."""

    job_id: str
    region: str
    business: BusinessType
    file_name: str
    data: bytes
    mode: str
    preflight: Preflight
    send: Send


class ImportRunner:
    """Runs imports in background threads and keeps their progress in the store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def end_stalled(self) -> None:
        """Jobs whose progress has not moved for ``STALLED`` are failed: their thread ended with the
        process that ran it (a restart, a crash), so that their page does not show them running for
        ever. A running job notes progress every few seconds (each 10,000 rows read, each batch)."""
        now = self.clock.now()
        before = (now - STALLED).isoformat(timespec="seconds")
        with self.store.read() as connection:  # pages poll every 2 s: a write only when one is stalled
            if not import_jobs.any_stalled(connection, before):
                return
        with self.store.write() as connection:
            import_jobs.end_stalled(connection, before, INTERRUPTED, now.isoformat(timespec="seconds"))

    def start(
        self,
        username: str,
        region: str,
        business: BusinessType,
        file_name: str,
        data: bytes,
        mode: str,
        preflight: Preflight,
        send: Send,
    ) -> str:
        """Begin importing ``data``; returns the job's id at once. ``preflight`` checks a batch as an
        add would meet it; ``send`` adds a batch of records through the exchange and returns the
        answer's datalist."""
        job_id = uuid.uuid4().hex
        now = self.clock.now().isoformat(timespec="seconds")
        job = import_jobs.ImportJob(
            id=job_id, username=username, region=region, business=business.code, file_name=file_name[:200],
            mode=mode, state="reading", total=0, checked=0, imported=0, error_rows=0, warning_rows=0, report=[],
            message="", created_at=now, updated_at=now,
        )  # fmt: skip
        with self.store.write() as connection:
            import_jobs.add(connection, job)
        work = _Work(job_id, region, business, file_name, data, mode, preflight, send)
        thread = threading.Thread(target=self._run, args=(work,), name=f"import-{job_id[:8]}", daemon=True)
        thread.start()
        return job_id

    def _update(self, job_id: str, **values: Any) -> None:
        values["updated_at"] = self.clock.now().isoformat(timespec="seconds")
        with self.store.write() as connection:
            import_jobs.update(connection, job_id, **values)

    def _run(self, work: _Work) -> None:
        job_id = work.job_id
        try:
            self._import(work)
        except FileRefused as refused:
            self._update(job_id, state="refused", message=str(refused))
        except ExchangeError as refused:  # the console app is locked out: the file is not checked
            self._update(job_id, state="refused", message=f"{refused.code.value} {refused.message}")
        except Exception:
            logger.exception("import job %s failed", job_id)
            self._update(
                job_id,
                state="failed",
                message="导入时发生内部错误，详见节点日志 / an internal error: see the node's log",
            )

    def _import(self, work: _Work) -> None:
        job_id, region, business, mode = work.job_id, work.region, work.business, work.mode
        report: list[dict[str, Any]] = []
        held = False
        bad: set[int] = set()
        warned: set[int] = set()
        seen_keys: dict[str, int] = {}
        total = 0

        def note(row: Row, field: str, severity: str, message: str) -> None:
            (bad if severity == "error" else warned).add(row.number)
            if len(report) < MAX_REPORT_ITEMS:
                report.append({"row": row.number, "field": field, "severity": severity, "message": message})

        def check(chunk: list[Row]) -> None:
            nonlocal held
            # The file's own faults first (formulas, region, keys repeated), so that the store is
            # not asked about rows that will not be sent.
            for row in chunk:
                for field, message in row.problems.items():
                    note(row, field, "error", message)
                place = row.values.get(business.region_field, "")
                if place and not covers(region, place):
                    note(
                        row,
                        business.region_field,
                        "error",
                        f"地区 {place} 不在您的范围（{region}）内 / outside your scope",
                    )
                key = row.values.get(business.primary_key, "")
                if key and key in seen_keys:
                    first = seen_keys[key]
                    note(row, business.primary_key, "error", f"与第 {first} 行重复 / the same key as row {first}")
                elif key:
                    seen_keys[key] = row.number
            unsent = {index for index, row in enumerate(chunk) if row.number in bad}
            checked, chunk_held = work.preflight([row.values for row in chunk], unsent)
            held = held or chunk_held
            for kind, faults in (("error", checked.errors), ("warning", checked.warnings)):
                for fault in faults:
                    for problem in (fault.errors if kind == "error" else fault.warnings) or ():
                        if problem.rule == DUPLICATE_KEY:
                            continue  # told above across the whole file, by row, as rows of a file
                        note(chunk[fault.index], problem.field, kind, problem.message)
            self._update(job_id, total=total, checked=total, error_rows=len(bad), warning_rows=len(warned),
                         report=sorted(report, key=lambda item: item["row"]))  # fmt: skip

        # One pass reads and checks the file a batch at a time; the rows to import wait in a spool
        # file, not in memory (a 100,000-row sheet held as dicts took 380 MB).
        with tempfile.TemporaryFile() as spool:
            chunk: list[Row] = []
            for row in read_rows(business, work.file_name, work.data):
                chunk.append(row)
                total += 1
                if len(chunk) == CHUNK:
                    check(chunk)
                    _spool(spool, chunk, bad)
                    chunk = []
            if chunk:
                check(chunk)
                _spool(spool, chunk, bad)
            if not total:
                raise FileRefused("文件中没有数据行 / the file holds no data rows")
            self._update(job_id, state="checking", total=total, checked=total)
            report.sort(key=lambda item: item["row"])
            if held:
                # Which rows is not said (as an add of them would not say): that would tell whether
                # a key (an ID number) is held outside the importer's view.
                self._update(job_id, state="done" if mode == "check" else "refused", message=HELD_ELSEWHERE)
                return
            if mode == "check":
                self._update(job_id, state="done", message="已校验，未导入 / checked; nothing imported")
                return
            if bad and mode == "clean":
                message = f"{len(bad)} 行有错误，未导入任何记录 / {len(bad)} rows have errors: nothing imported"
                self._update(job_id, state="refused", message=message)
                return
            spool.seek(0)
            self._send_all(job_id, total, spool, report, work.send)

    def _send_all(self, job_id: str, total: int, spool: IO[bytes], report: list[dict[str, Any]], send: Send) -> None:
        """Send the spooled rows in batches of ``CHUNK``; stop at the first batch refused."""
        self._update(job_id, state="importing")
        imported = 0
        for batch in _unspooled(spool):
            datalist = send([row.values for row in batch])
            if datalist.get("result") != RESULT_SUCCESS:
                # Only a change since the check can refuse a batch here (another writer took a key).
                for fault in datalist.get("busilist") or []:
                    if (
                        isinstance(fault, dict)
                        and isinstance(fault.get("index"), int)
                        and 0 <= fault["index"] < len(batch)
                        and len(report) < MAX_REPORT_ITEMS
                    ):
                        row = batch[fault["index"]]
                        for item in fault.get("errors") or [{"field": "", "message": ""}]:
                            report.append({"row": row.number, "field": str(item.get("field", "")), "severity": "error",
                                           "message": str(item.get("message", ""))})  # fmt: skip
                self._update(
                    job_id, state="failed", imported=imported, report=sorted(report, key=lambda item: item["row"]),
                    message=(f"已导入 {imported} 条；第 {batch[0].number}–{batch[-1].number} 行这一批被拒绝："
                             f"{datalist.get('code', '')} {datalist.get('message', '')} / {imported} imported, then "
                             f"rows {batch[0].number}-{batch[-1].number} were refused"),
                )  # fmt: skip
                return
            imported += len(batch)
            self._update(job_id, imported=imported)
        skipped = total - imported
        message = f"已导入 {imported} 条 / {imported} imported"
        if skipped:
            zh = f"已导入 {imported} 条，跳过有错误的 {skipped} 行"
            message = f"{zh} / {imported} imported, {skipped} rows with errors skipped"
        self._update(job_id, state="done", message=message)


def _spool(spool: IO[bytes], chunk: list[Row], bad: set[int]) -> None:
    """Append the chunk's rows without errors to the spool, one JSON line each."""
    spool.write(b"".join(orjson.dumps([row.number, row.values]) + b"\n" for row in chunk if row.number not in bad))


def _unspooled(spool: IO[bytes]) -> Iterator[list[Row]]:
    """The spooled rows again, in batches of ``CHUNK``."""
    batch: list[Row] = []
    for line in spool:
        number, values = orjson.loads(line)
        batch.append(Row(number, values, {}))
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def job_view(job: import_jobs.ImportJob) -> dict[str, Any]:
    """A job as its page shows it."""
    running = job.state in import_jobs.RUNNING
    # While the file is read its length is not known: no percentage until it is.
    percent = None if job.state == "reading" else round(100 * min(job.imported / (job.total or 1), 1.0))
    return {
        "job": job,
        "running": running,
        "percent": percent,
        "mode_name": MODES.get(job.mode, job.mode),
    }
