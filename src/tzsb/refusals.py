"""The refusal table: every way the node refuses a request, with its code and its wording.

One named constructor per refusal, so that what a caller reads lives in one place and code and
tests share it. Each message is Chinese, then English, and says what the caller should change.
Grouped by the step that refuses: envelope, caller, authorisation, busilist, query, write, node.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tzsb.errors import ErrorCode, ExchangeError, RecordFault

# -- envelope (protocol.messages) ------------------------------------------------------------


def body_not_json() -> ExchangeError:
    return ExchangeError(
        ErrorCode.JSON,
        "请求体不是 UTF-8 编码的 JSON 对象，请按 application/json; charset=utf-8 发送",
        "The body is not a UTF-8 JSON object; send application/json; charset=utf-8",
    )


def parameter_repeated(name: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"参数 {name} 重复出现，每个参数只能发送一次",
        f"Parameter '{name}' appears more than once; send each parameter once",
    )


def unknown_parameters(names: Sequence[str]) -> ExchangeError:
    listed = ", ".join(names)
    return ExchangeError(
        ErrorCode.PARAM,
        f"未知参数 {listed}；只允许 appid、busicode、action、busilist、random、sign 及可选的 timestamp",
        f"Unknown parameter(s) {listed}; only appid, busicode, action, busilist, "
        "random, sign and the optional timestamp are allowed",
    )


def busicode_and_alias() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        "busicode 与 basicode 只能发送其一",
        "Send either busicode or its alias basicode, not both",
    )


def parameter_missing(name: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"缺少必填参数 {name}（表 5），请补充后重新签名发送",
        f"Missing required parameter '{name}' (table 5); add it, sign again and resend",
    )


def parameter_not_text(name: str, *, array_allowed: bool = False) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"参数 {name} 必须是字符串" + ("或 JSON 数组" if array_allowed else ""),
        f"Parameter '{name}' must be a string" + (" or a JSON array" if array_allowed else ""),
    )


def parameter_malformed(name: str, expected_zh: str, expected_en: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"参数 {name} 格式不正确，应为{expected_zh}",
        f"Parameter '{name}' is malformed; expected {expected_en}",
    )


def busilist_too_deep() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        "busilist 嵌套层级过深，记录应为扁平的 JSON 对象",
        "busilist is nested too deeply; records are flat JSON objects",
    )


def busilist_not_json() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        "busilist 不是合法的 JSON，请发送 JSON 数组（可作为字符串）",
        "busilist is not valid JSON; send a JSON array (optionally as a string)",
    )


def busilist_not_array() -> ExchangeError:
    return ExchangeError(ErrorCode.PARAM, "busilist 必须是 JSON 数组", "busilist must be a JSON array of objects")


def busilist_item_not_object(index: int) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"busilist 第 {index} 项不是 JSON 对象",
        f"busilist item {index} is not a JSON object",
    )


# -- the caller: identity, signature, limits (exchange.admission) ----------------------------


def unknown_app(appid: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.APPID,
        f"应用账号 {appid} 不存在或已停用，请向节点管理员确认 appid",
        f"App {appid} is unknown or disabled; check the appid with the node operator",
    )


def address_not_allowed(appid: str, client_addr: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"应用 {appid} 不允许从地址 {client_addr} 访问，请向节点管理员登记访问地址",
        f"App {appid} may not call from {client_addr}; ask the node operator to allow that address",
    )


def certificate_required(appid: str, *, presented: bool) -> ExchangeError:
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"应用 {appid} 须使用已绑定的客户端证书（CA 认证）访问，本次"
        + ("证书未绑定到该应用" if presented else "未提供证书"),
        f"App {appid} must present its bound client certificate (mutual TLS); this request "
        + ("presented a certificate not bound to it" if presented else "had none"),
    )


def locked_out(appid: str, client_addr: str, until: datetime) -> ExchangeError:
    moment = until.isoformat(timespec="seconds")
    return ExchangeError(
        ErrorCode.LOCKED,
        f"应用 {appid} 自地址 {client_addr} 多次签名校验失败，已暂停至 {moment}"
        "（规范 7.4）；请核对密钥，或请节点管理员解除（tzsb app unlock）",
        f"App {appid} failed signature checks repeatedly from {client_addr} and is locked out until "
        f"{moment} (spec 7.4); check the secret, or ask the node operator to unlock",
    )


def locked_out_for_collisions(appid: str, until: datetime) -> ExchangeError:
    moment = until.isoformat(timespec="seconds")
    return ExchangeError(
        ErrorCode.LOCKED,
        f"应用 {appid} 多次提交本应用无权访问的记录已占用的主键，已暂停至 {moment}；"
        "请联系节点管理员核实（tzsb app collisions）并解除（tzsb app unlock）",
        f"App {appid} repeatedly sent keys held by records it may not access and is locked out until {moment}; "
        "ask the node operator to check (tzsb app collisions) and unlock it (tzsb app unlock)",
    )


def too_many_refusals(per_minute: int) -> ExchangeError:
    return ExchangeError(
        ErrorCode.LIMIT,
        f"本地址每分钟被拒绝的未认证请求超过 {per_minute} 次，请在一分钟后重试，并核对 appid、签名与请求格式",
        f"More than {per_minute} unauthenticated requests from this address were refused this minute; retry in a "
        "minute, after checking the appid, the signature and the request format",
    )


def signature_mismatch(algorithm: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.SIGN,
        f"签名校验失败（{algorithm}）：请按规范 6.5 重算 sign——除 sign 外的非空参数按参数名 ASCII "
        "排序，以 name=value 用 & 连接，末尾加 &key=密钥，再计算并转大写",
        f"Signature mismatch ({algorithm}): rebuild it as in spec 6.5 — every non-empty parameter "
        "but sign, sorted by name (ASCII), joined as name=value with &, then &key=<secret>; digest, upper case",
    )


def timestamp_required() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        "本应用须在请求中携带参与签名的 timestamp（Unix 秒）",
        "This app must send the signed parameter 'timestamp' (Unix seconds)",
    )


def timestamp_off(skew_seconds: float, window_seconds: int) -> ExchangeError:
    return ExchangeError(
        ErrorCode.REPLAY,
        f"timestamp 与节点时间相差 {skew_seconds:.0f} 秒，超过 ±{window_seconds} 秒："
        "请校准时钟并以当前时间重新签名发送",
        f"timestamp is {skew_seconds:.0f} s off the node's clock, beyond ±{window_seconds} s; "
        "correct the clock and sign the request again with the current time",
    )


def rate_exceeded(appid: str, per_minute: int) -> ExchangeError:
    return ExchangeError(
        ErrorCode.LIMIT,
        f"应用 {appid} 每分钟最多 {per_minute} 次请求，请稍后重试",
        f"App {appid} may send at most {per_minute} requests per minute; retry later",
    )


def body_over_app_limit(size: int, limit: int) -> ExchangeError:
    return ExchangeError(
        ErrorCode.LIMIT,
        f"请求体 {size} 字节，超过本应用上限 {limit} 字节，请分批发送",
        f"The request has {size} bytes, over this app's limit of {limit}; split the batch",
    )


def body_over_node_limit(limit: int) -> ExchangeError:
    """A body larger than any app may send, refused by the HTTP layer before it is read in full."""
    return ExchangeError(
        ErrorCode.LIMIT,
        f"请求体超过节点上限 {limit} 字节，请分批发送",
        f"Request body exceeds the node's limit of {limit} bytes; split the batch",
    )


def random_reused() -> ExchangeError:
    return ExchangeError(
        ErrorCode.REPLAY,
        "random 已被本应用的另一个请求使用，请为每个新请求生成新的 random（建议 UUID）",
        "This random was already used by a different request of this app; generate a new random "
        "(a UUID) for every new request",
    )


def answer_expired() -> ExchangeError:
    return ExchangeError(
        ErrorCode.REPLAY,
        "本请求已处理过，其首次响应已不再保存；如需再次提交，请生成新的 random 并重新签名",
        "This request was answered before and its first answer is no longer kept; to send it again, "
        "generate a new random and sign it again",
    )


# -- authorisation: busicode, action, grants, directions (exchange.admission, registry.access) --


def busicode_unknown(busicode: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.BUSICODE,
        f"业务分类代码 {busicode} 无效：前 2 位须为表 6 的用途代码，后 4 位须为表 7 的业务代码",
        f"busicode {busicode} is not a purpose code of table 6 followed by a business code of table 7",
    )


def action_unknown(action: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"请求动作代码 {action} 无效，应为 01 新增、02 修改、03 删除、04 查询",
        f"action {action} is not valid; use 01 add, 02 modify, 03 delete or 04 query",
    )


def not_granted(appid: str, busicode: str, action: str, action_label: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"应用 {appid} 未被授权对 {busicode} 执行 {action}（{action_label}），请向节点管理员申请授权",
        f"App {appid} is not granted action {action} on {busicode}; ask the node operator",
    )


def business_not_served(business: str, name: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.BUSICODE,
        f"本节点未提供业务类型 {business}（{name}）的数据接口",
        f"This node does not serve business type {business}",
    )


def interface_disabled(business: str, failures: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.DISABLED,
        f"业务类型 {business} 的数据校验规则测试未全部通过，接口暂未启用（规范 6.1 c），"
        f"请节点管理员运行 tzsb rules test 修正：{failures}",
        f"The interface for {business} is not enabled: its rule tests fail (spec 6.1 c). "
        f"The node operator should run `tzsb rules test`: {failures}",
    )


def public_purpose_read_only(name: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"用途 31（{name}）只能查询（action 04）",
        f"Purpose 31 ({name}) is read-only: only action 04",
    )


def external_purpose(purpose: str, name: str, level: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"用途 {purpose}（{name}）只用于与外部部门交换数据，本应用级别为 {level}",
        f"Purpose {purpose} is for external departments; this app's level is {level}",
    )


def external_purpose_at_non_regulator(purpose: str, name: str, node_level_zh: str, node_level: str) -> ExchangeError:
    """21/22 sent to a node that is no regulator's (spec 4.2.2)."""
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"用途 {purpose}（{name}）用于监管部门与外部部门之间（规范 4.2.2），本节点为 {node_level_zh}，"
        "不是监管部门的节点；请向监管部门的节点发送",
        f"Purpose {purpose} joins a regulator and an external department (spec 4.2.2); this node is {node_level}, "
        "not a regulator's node: send it to the regulator's node",
    )


def upper_external_below_province(name: str, node_level_zh: str, node_level: str) -> ExchangeError:
    """22 sent to a county or city regulator (spec 4.2.2 b)."""
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"用途 22（{name}）只用于国家、省级监管部门与其上级部门之间（规范 4.2.2 b），本节点为 {node_level_zh}；"
        "与同级部门交换请使用用途 21",
        f"Purpose 22 joins only the national or a provincial regulator with its superior authorities "
        f"(spec 4.2.2 b); this node is {node_level}. Exchange with departments of the same level uses purpose 21",
    )


def regulators_only(purpose: str, name: str, flow_zh: str, flow: str) -> ExchangeError:
    """An internal purpose, or 90, where a party is no regulator."""
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"用途 {purpose}（{name}）只用于监管部门之间，本次为 {flow_zh}；"
        "外部部门请使用用途 21 或 22，公众服务请使用用途 31（只能查询）",
        f"Purpose {purpose} is for regulators only; this request is {flow}. "
        "External departments use purpose 21 or 22, public services purpose 31 (query only)",
    )


def same_regulator_only(flow_zh: str, flow: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"用途 11（本级内部接口）只用于同一监管部门内部，本次为 {flow_zh}",
        f"Purpose 11 is for systems of the same regulator; this request is {flow}",
    )


def province_to_national_only(flow_zh: str, flow: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"用途 12（省—国家接口）只允许省级向国家报送数据，本次为 {flow_zh}",
        f"Purpose 12 only carries data from a province to the national level; this request is {flow}",
    )


def national_to_province_only(flow_zh: str, flow: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"用途 13（国家—省接口）只允许国家向省级下发数据，本次为 {flow_zh}",
        f"Purpose 13 only carries data from the national level to a province; this request is {flow}",
    )


def province_and_its_own_only(flow_zh: str, flow: str, regions: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"用途 14（省级—所辖下级接口）只用于省级与所辖市、县之间，本次为 {flow_zh}（{regions}）",
        f"Purpose 14 is between a province and its own cities and counties; this request is {flow} ({regions})",
    )


def direction_not_allowed(business: str, name: str, flow_zh: str, flow: str, allowed: str, entry: str) -> ExchangeError:
    """A flow between regulator levels that the direction matrix (tables 1–4, as the node reads
    them) does not allow; ``entry`` is how an operator would name it in ``<home>/directions.json``."""
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"业务 {business}（{name}）不允许 {flow_zh} 方向的数据交换（表 1–4），允许：{allowed}；"
        f'如确需此方向，请节点管理员在 <home>/directions.json 中为 {business} 写明 "{entry}"',
        f"Business type {business} does not flow {flow} (spec tables 1-4); allowed: {allowed}. "
        f'If this node needs that flow, its operator can name it for {business} in <home>/directions.json as "{entry}"',
    )


def other_purpose_off_chain(flow_zh: str, flow: str, regions: str) -> ExchangeError:
    """Purpose 90 between a regulator and the superior or subordinate of another."""
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"用途 90（其他数据接口）在不同级别之间只用于上级与其所辖下级（上级的区域包含下级的区域），"
        f"本次为 {flow_zh}（{regions}）；请与本地区的上级或下级监管部门交换",
        f"Purpose 90 between levels joins a regulator only with one inside its own region; this request is "
        f"{flow} ({regions}). Exchange with your own superior or subordinate regulators",
    )


# -- the busilist as a whole (exchange) --------------------------------------------------------


def busilist_holds_nul() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        "busilist 含有 NUL 字符（\\u0000），请去掉后重发",
        "busilist contains NUL characters (\\u0000); remove them and resend",
    )


def busilist_empty() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        "busilist 为空，请至少提供一条记录（查询时提供一个条件对象，可为 {}）",
        "busilist is empty; send at least one record (for a query, one condition object, may be {})",
    )


def too_many_records(limit: int, count: int) -> ExchangeError:
    return ExchangeError(
        ErrorCode.LIMIT,
        f"单次请求最多 {limit} 条记录，本次 {count} 条，请分批发送",
        f"At most {limit} records per request, got {count}; split the batch",
    )


# -- 04 query (exchange.query, exchange.cursors) -----------------------------------------------


def query_needs_one_condition() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        "查询时 busilist 只能包含一个条件对象",
        "A query's busilist must hold exactly one condition object",
    )


def query_control_unknown(name: str, known: Sequence[str]) -> ExchangeError:
    listed = ", ".join(known)
    return ExchangeError(
        ErrorCode.PARAM,
        f"未知的查询控制参数 {name}，可用：{listed}",
        f"Unknown query control {name}; use one of {listed}",
    )


def history_flag_malformed() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        "_history 只能为 true（查询一条记录的历史版本）",
        "_history must be true (to ask for one record's versions)",
    )


def history_needs_key(key_field: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"历史版本查询（_history）须且只须给出主键 {key_field}，不能带其他条件",
        f"A history query (_history) takes the primary key {key_field} and no other condition",
    )


def query_field_unknown(name: str, business: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM, f"查询字段 {name} 不是 {business} 的数据元", f"{name} is not a data element of {business}"
    )


def query_value_not_text(name: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM, f"查询条件 {name} 的值必须是非空字符串", f"Condition {name} must be a non-empty string"
    )


def query_by_sensitive_field(name: str, label: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"{label}（{name}）是敏感字段，本应用只能收到脱敏数据，不能以其作为查询条件",
        f"{name} is a sensitive field; an app that receives it masked may not query by it",
    )


def query_by_sensitive_value(name: str, label: str) -> ExchangeError:
    """A masked app querying by a value that is an ID or mobile number (a certificate number may be
    its holder's ID number: an equality match would confirm a guessed ID)."""
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"本应用收到的该业务类型数据为脱敏数据，不能以身份证号码或手机号码作为{label}（{name}）的查询值",
        f"This app receives this business type masked and may not query {name} by a value that is an ID "
        "number or a phone number",
    )


def query_region_malformed(name: str) -> ExchangeError:
    return ExchangeError(ErrorCode.PARAM, f"{name} 应为 6 位行政区划代码", f"{name} must be a 6-digit region code")


def query_region_outside(code: str, scope: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.REGION,
        f"查询区域 {code} 超出本应用的授权区域 {scope}，请在授权区域内查询",
        f"Region {code} is outside this app's region {scope}; query inside your region",
    )


def query_time_malformed(name: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"{name} 应为 YYYY-MM-DD 或 YYYY-MM-DD HH:MM:SS",
        f"{name} must be YYYY-MM-DD or YYYY-MM-DD HH:MM:SS",
    )


def include_deleted_malformed() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM, "_include_deleted 应为 true 或 false", "_include_deleted must be true or false"
    )


def page_size_malformed(maximum: int) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"_page_size 应为 1 到 {maximum} 之间的整数",
        f"_page_size must be a whole number from 1 to {maximum}",
    )


def since_with_cursor() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        "_since 与 _cursor 不能同时使用：增量拉取请用上次返回的 next_since 作为 _since",
        "Use _since or _cursor, not both: page a change feed with next_since as _since",
    )


def since_of_another_business() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        '_since 不属于本业务类型的增量游标，请使用本业务上次返回的 next_since 或 "0"',
        '_since is not a change cursor of this business type; use its last next_since or "0"',
    )


def cursor_of_other_conditions() -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        "_cursor 与本次查询条件不符，翻页时请保持其余条件不变",
        "_cursor belongs to other conditions; keep every other condition unchanged while paging",
    )


def cursor_invalid(parameter: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"{parameter} 无效或已被篡改，请使用上一次响应返回的值",
        f"{parameter} is invalid or was altered; pass the value the previous response returned",
    )


# -- 01/02/03 writes (exchange.writes) ---------------------------------------------------------


def records_invalid(faults: Sequence[RecordFault], count: int) -> ExchangeError:
    """``count`` records break rules; ``faults`` lists them (capped: the message counts all)."""
    return ExchangeError(
        ErrorCode.VALIDATION,
        f"有 {count} 条记录未通过数据校验，整批未写入，请按 busilist 中的明细修正后重发",
        f"{count} record(s) failed validation; nothing was written. Fix them as listed in busilist and resend",
        faults,
    )


def records_invalid_after_change(faults: Sequence[RecordFault]) -> ExchangeError:
    return ExchangeError(
        ErrorCode.VALIDATION,
        f"有 {len(faults)} 条记录修改后未通过数据校验，整批未写入，请按 busilist 中的明细修正",
        f"{len(faults)} record(s) fail validation after the change; nothing was written. "
        "Fix them as listed in busilist",
        faults,
    )


def keys_held_elsewhere() -> ExchangeError:
    """An add naming keys held by records the caller may not access: which keys is not said (that
    would tell a prober which ID numbers exist elsewhere); the operator sees them."""
    return ExchangeError(
        ErrorCode.CONFLICT,
        "本批有记录的主键已被本应用无权访问的记录占用（其他区域或其他数据源），整批未写入；"
        "如这些记录应由本应用报送，请联系节点管理员核实并转移（tzsb record reassign）",
        "Some primary keys of this batch belong to records this app may not access (another region or "
        "another source); nothing was written. If the records are yours, ask the node operator to check "
        "and reassign them (tzsb record reassign)",
    )


def records_outside_region(faults: Sequence[RecordFault], scope: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.REGION,
        f"有 {len(faults)} 条记录的所属区域超出本应用的授权区域 {scope}，整批未写入",
        f"{len(faults)} record(s) lie outside this app's region {scope}; nothing was written",
        faults,
    )


def records_not_found(faults: Sequence[RecordFault], key_field: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.NOTFOUND,
        f"有 {len(faults)} 条记录在本节点不存在（{key_field}），整批未写入；新记录请用 01 新增",
        f"{len(faults)} record(s) do not exist here ({key_field}); nothing was written. "
        "Use action 01 to add new records",
        faults,
    )


def records_of_another_source(faults: Sequence[RecordFault], business: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.CONFLICT,
        f"有 {len(faults)} 条记录由其他数据源提供（一数一源），本应用无权覆盖 {business}，整批未写入；"
        "如确需接管，请联系节点管理员授予 override",
        f"{len(faults)} record(s) were supplied by another source (one record, one source) and this app may not "
        f"override {business}; nothing was written. Ask the node operator for an override grant",
        faults,
    )


# -- the log interface (6.3.1 d) ------------------------------------------------------------------


def log_query_only(action: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"日志接口只支持查询（04），本次为 {action}",
        f"The log interface answers queries (04) only; this request is {action}",
    )


def log_condition_unknown(name: str, known: Sequence[str]) -> ExchangeError:
    listed = ", ".join(known)
    return ExchangeError(
        ErrorCode.PARAM,
        f"未知的日志查询条件 {name}，可用：{listed}",
        f"Unknown log condition {name}; use one of {listed}",
    )


def log_condition_not_text(name: str) -> ExchangeError:
    return ExchangeError(
        ErrorCode.PARAM,
        f"日志查询条件 {name} 应为非空字符串",
        f"Log condition {name} must be a non-empty string",
    )


def log_of_another_app(appid: str) -> ExchangeError:
    """An app that is not a log auditor asked for another app's entries."""
    return ExchangeError(
        ErrorCode.FORBIDDEN,
        f"本应用只能查询自己的交互日志，无权查询 {appid} 的日志；"
        "如需审计本区域全部日志，请联系节点管理员授予 log-auditor",
        f"This app may read only its own log entries, not those of {appid}; to audit every entry of its region, "
        "ask the node operator for the log-auditor grant",
    )


# -- routing to a provider (5.2.2) --------------------------------------------------------------


def upstream_failed(service: str, reason_zh: str, reason_en: str) -> ExchangeError:
    """The provider a request was routed to did not give a usable answer (never its raw body)."""
    return ExchangeError(
        ErrorCode.UPSTREAM,
        f"数据提供方 {service} 未能给出有效应答：{reason_zh}；数据未改动，请稍后重试，如持续出现请联系节点管理员",
        f"The provider {service} gave no usable answer: {reason_en}. Nothing was changed here; retry later, and "
        "tell the node operator if it persists",
    )


def upstream_paused(service: str, seconds: int) -> ExchangeError:
    """The provider's circuit breaker is open after repeated failures: it is not asked for a while."""
    return ExchangeError(
        ErrorCode.UPSTREAM,
        f"数据提供方 {service} 连续失败，暂停转发，约 {seconds} 秒后再试",
        f"The provider {service} failed repeatedly and is not asked for now; retry in about {seconds} s",
    )


# -- the node itself ---------------------------------------------------------------------------


def internal_error() -> ExchangeError:
    return ExchangeError(
        ErrorCode.INTERNAL,
        "节点内部错误，数据未写入，请稍后重试；如持续出现请联系节点管理员",
        "Internal error in the node; nothing was written. Retry later, and tell the node operator if it persists",
    )
