"""``reg.search(expr)``: the versions of every model that match an MLflow-style filter.

``test.auc > 0.9 and stage = 'Production' and git.dirty = 'false'``: clauses joined by
AND (MLflow's filter syntax has no OR), each ``FIELD OP VALUE`` with OP one of ``= != <
<= > >= LIKE ILIKE`` and VALUE a number, a quoted text or a bare word (``stage =
Production``, as a shell or ``%registry`` leaves a quoted word). Fields: ``name``,
``version``, ``run_id``, ``stage``, ``author``, the lineage fields (``git.dirty``,
``gpu.count``, ``data.0.md5``, ...; ``jupyreg.tags`` maps them to their tags),
``params.X``, ``tags.X`` (any version tag), and metrics (``val.auc`` or
``metrics.val.auc``). MLflow evaluates what it can server-side (``search_model_versions``
on name, run id and tags; ``search_runs`` on metrics and params); every clause is then
checked on the records themselves, so a metric is judged on its registered value like the
policy gates do, and numeric comparisons of tags (``gpu.count > 0``) work although MLflow
compares tags as text.

Limits, checked before anything is sent: at most ``MAX_CLAUSES`` clauses and
``MAX_LENGTH`` characters (InvalidArgument past them). MLflow is given at most
``SERVER_CLAUSES`` clauses of each filter (SQLite joins at most 64 tables, one per metric or
param clause, and a long filter travels in a GET's URL); the others are judged here only.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from jupyreg import lifecycle, tags
from jupyreg.entities import ModelVersion
from jupyreg.errors import InvalidArgument
from jupyreg.queries import model_version
from jupyreg.store import Store, quote

_CLAUSE = re.compile(
    r"""\s*(?P<field>(?:\w+\.)?`[^`]+`|[A-Za-z_][\w.\-]*)
        \s*(?P<op><=|>=|!=|=|<|>|\bI?LIKE\b)
        \s*(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?
           |\btrue\b|\bfalse\b|[A-Za-z_][\w.\-/]*)\s*""",
    re.VERBOSE | re.IGNORECASE,
)
_AND = re.compile(r"AND\b", re.IGNORECASE)
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TEXT_OPS = ("=", "!=", "LIKE", "ILIKE")
MAX_CLAUSES = 100
MAX_LENGTH = 10_000
"""Characters of a search expression."""
SERVER_CLAUSES = 16
"""Clauses of each filter MLflow evaluates (the rest are judged on the records)."""
SERVER_FILTER_LENGTH = 2_000
"""Characters of each filter MLflow evaluates."""
_ATTRIBUTES = ("name", "run_id", "version")
FORMS = (
    "FIELD OP VALUE [AND ...], e.g. \"test.auc > 0.9 and stage = 'Production'\"; OP is one of "
    "= != < <= > >= LIKE ILIKE; FIELD is name, version, stage, author, a metric (val.auc), "
    "a lineage field (git.dirty, gpu.count, data.0.md5), params.X or tags.X"
)


@dataclass(frozen=True)
class Clause:
    kind: str  # "attribute", "tag", "metric" or "param"
    key: str  # the attribute, the tag key, the metric or the param name
    op: str
    value: str | float  # a text (quoted, or a bare word) or a number

    def version_filter(self) -> str | None:
        """This clause in ``search_model_versions`` syntax, where MLflow can judge it."""
        if self.op not in _TEXT_OPS or not self._text_exact():
            return None
        if self.kind == "tag" and tags.is_lineage_tag(self.key):
            return None  # a plain-MLflow version not frozen has it on its run, not its tags
        if self.kind == "tag":
            return f"tags.`{self.key}` {self.op} {quote(self._text())}"
        if self.kind == "attribute" and self.key != "version":
            return f"{self.key} {self.op} {quote(self._text())}"
        return None

    def run_filter(self) -> str | None:
        """This clause in ``search_runs`` syntax, where MLflow can judge it."""
        if self.kind == "metric" and isinstance(self.value, float) and self.op in _ORDER:
            return f"metrics.`{self.key}` {self.op} {self.value}"
        if self.kind == "param" and self.op in _TEXT_OPS and self._text_exact():
            return f"params.`{self.key}` {self.op} {quote(self._text())}"
        return None

    def matches(self, mv: ModelVersion) -> bool:
        actual = self._actual(mv)
        if actual is None:
            return False
        if self.op in ("LIKE", "ILIKE"):
            pattern = "".join(
                ".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in self._text()
            )
            flags = re.IGNORECASE | re.DOTALL if self.op == "ILIKE" else re.DOTALL
            return re.fullmatch(pattern, str(actual), flags) is not None
        compare = _ORDER[self.op]
        number = _number(actual)
        if isinstance(self.value, float) and number is not None:
            return compare(number, self.value)
        return compare(str(actual), self._text())

    def _actual(self, mv: ModelVersion) -> Any:
        if self.kind == "metric":
            return mv.metrics.get(self.key)
        if self.kind == "param":
            return mv.params.get(self.key)
        if self.kind == "attribute":
            return getattr(mv, self.key)
        if self.key == tags.STAGE_TAG:
            return mv.stage
        if self.key == tags.AUTHOR_TAG:
            return mv.author
        return mv.tags.get(self.key)

    def _text(self) -> str:
        if isinstance(self.value, str):
            return self.value
        return str(int(self.value)) if self.value.is_integer() else str(self.value)

    def _text_exact(self) -> bool:
        """Whether the stored text of an equal value is this value's text (a number written
        as ``0.50`` may be stored as ``0.5``: judged client-side only)."""
        return isinstance(self.value, str) or self.value.is_integer()


def parse(expr: str) -> list[Clause]:
    """The clauses of a search expression; InvalidArgument (one line) when malformed."""
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidArgument(f"empty search expression: use {FORMS}")
    if len(expr) > MAX_LENGTH:
        raise InvalidArgument(
            f"search expression of {len(expr):,} characters: at most {MAX_LENGTH:,} are read"
        )
    clauses: list[Clause] = []
    pos = 0
    while True:
        if len(clauses) == MAX_CLAUSES:
            raise InvalidArgument(
                f"search expression of more than {MAX_CLAUSES} clauses: at most {MAX_CLAUSES} "
                "are read"
            )
        match = _CLAUSE.match(expr, pos)
        if match is None:
            raise InvalidArgument(_bad(expr, pos))
        clauses.append(_clause(match["field"], match["op"].upper(), match["value"]))
        pos = match.end()
        if pos == len(expr):
            return clauses
        joined = _AND.match(expr, pos)
        if joined is None:
            raise InvalidArgument(_bad(expr, pos))
        pos = joined.end()


def _bad(expr: str, pos: int) -> str:
    rest = expr[pos:].strip()
    if re.match(r"or\b", rest, re.IGNORECASE):
        return "search expressions join clauses with AND only (MLflow's filter syntax has no OR)"
    near = f"near {rest[:40]!r}" if rest else "at its end"
    return f"cannot read search expression {expr!r} {near}: use {FORMS}"


def _clause(field: str, op: str, literal: str) -> Clause:
    value: str | float
    if literal[0] in "'\"":
        value = re.sub(r"\\(.)", r"\1", literal[1:-1])
    elif literal.lower() in ("true", "false"):
        value = literal.lower()
    elif literal[0].isalpha() or literal[0] == "_":  # a bare word, as a shell leaves 'it'
        value = literal
    else:
        value = float(literal)
    prefix, _, rest = field.partition(".")
    rest = rest.strip("`")
    field = field.strip("`")
    if prefix in ("tags", "metrics", "params") and rest:
        kind = {"tags": "tag", "metrics": "metric", "params": "param"}[prefix]
        return _checked(Clause(kind, rest, op, value))
    if field in _ATTRIBUTES:
        if field == "version" and (isinstance(value, str) or op not in _ORDER):
            raise InvalidArgument(f"version {op} {literal}: compare version with a number")
        return Clause("attribute", field, op, value)
    key = tags.search_tag_key(field)
    if key == tags.STAGE_TAG and op in ("=", "!="):
        value = lifecycle.normalize_stage(str(value))
    if key is not None:
        return Clause("tag", key, op, value)
    return _checked(Clause("metric", field, op, value))


def _checked(clause: Clause) -> Clause:
    if clause.kind == "metric" and (isinstance(clause.value, str) or clause.op not in _ORDER):
        raise InvalidArgument(
            f"metric {clause.key} {clause.op} {clause.value!r}: compare a metric with a number "
            f"using one of {' '.join(_ORDER)}"
        )
    return clause


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _server_side(filters: Iterable[str | None]) -> str:
    """The filters MLflow can judge, joined, within ``SERVER_CLAUSES`` and
    ``SERVER_FILTER_LENGTH`` (every clause is judged on the records anyway)."""
    chosen: list[str] = []
    length = 0
    for f in filters:
        if f is None:
            continue
        if len(chosen) == SERVER_CLAUSES:
            break
        if length + len(f) + 5 <= SERVER_FILTER_LENGTH:
            chosen.append(f)
            length += len(f) + 5  # with " AND "
    return " AND ".join(chosen)


def search_records(store: Store, expr: str) -> list[ModelVersion]:
    """The versions matching ``expr``, by model name then version."""
    clauses = parse(expr)
    version_filter = _server_side(c.version_filter() for c in clauses)
    run_filter = _server_side(c.run_filter() for c in clauses)
    states = store.versions(filter_string=version_filter or None)
    if run_filter:
        runs = store.runs_where(run_filter)
        states = [s for s in states if s.run_id in runs]
    else:
        runs = store.runs([s.run_id for s in states if s.run_id])
    aliases = store.many_aliases(s.name for s in states)
    found = (model_version(s, runs.get(s.run_id or ""), aliases[s.name]) for s in states)
    return [mv for mv in found if all(c.matches(mv) for c in clauses)]
