"""The small expression language shared by ``{{ }}`` templates and step conditions.

Our own tokenizer, a recursive-descent parser and a tree-walking evaluator: user text is
never handed to Python ``eval``/``exec``/``ast``. The grammar (lowest precedence first)::

    expr       := or_expr ( "?" expr ":" expr )?
    or_expr    := and_expr ( ("or" | "||") and_expr )*
    and_expr   := not_expr ( ("and" | "&&") not_expr )*
    not_expr   := ("not" | "!") not_expr | comparison
    comparison := additive ( CMP additive | "contains" additive | "matches" additive
                           | "between" additive "and" additive )?
    additive   := term ( ("+" | "-") term )*
    term       := unary ( ("*" | "/" | "%") unary )*
    unary      := "-" unary | postfix
    postfix    := primary ( "." NAME | "." INT | "[" expr "]" | "." NAME "(" args ")" )*
    primary    := NUMBER | STRING | true | false | null | NAME | NAME "(" args ")"
                | "(" expr ")" | "[" args "]"

A chain of names/indices after a bare name is a ``Path``; the evaluator asks a resolver for
it. ``x.length`` (when ``x`` has no ``length`` key) is ``len(x)``; ``x.f(args)`` is ``f(x,
args)``. Everything is bounded: text length, nesting depth, regex pattern/input size and
time, exponent size, string repetition.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

try:  # the ``regex`` module supports a matching timeout (catastrophic backtracking)
    import regex as _regex
except ImportError:  # pragma: no cover - regex ships with our dependencies
    _regex = None

MAX_EXPR_CHARS = 10_000
MAX_DEPTH = 64
MAX_PATTERN_CHARS = 200
MAX_MATCH_INPUT_CHARS = 100_000
REGEX_TIMEOUT_S = 0.25
MAX_EXPONENT = 1_000


class ExprError(Exception):
    """Base of expression errors; templating/conditions re-raise them as their own class."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        super().__init__(message)


class ExprSyntaxError(ExprError):
    """The text is not a valid expression."""


class ExprEvalError(ExprError):
    """The expression is valid but cannot be evaluated (e.g. division by zero)."""


# --- tokens -----------------------------------------------------------------------------

KEYWORDS = frozenset({"and", "or", "not", "contains", "matches", "between"})
LITERAL_WORDS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "nil": None,
    "none": None,
    "True": True,
    "False": False,
    "None": None,
}
TWO_CHAR_OPS = ("==", "!=", ">=", "<=", "&&", "||")
ONE_CHAR_OPS = "<>+-*/%()[],.?:!"
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Token:
    kind: str  # "num" | "str" | "lit" | "name" | "kw" | "op" | "end"
    value: Any
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens or raise ``ExprSyntaxError`` naming the position."""
    if len(text) > MAX_EXPR_CHARS:
        raise ExprSyntaxError(f"expression longer than {MAX_EXPR_CHARS} characters", 0)
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "'\"":
            value, i2 = _read_string(text, i)
            tokens.append(Token("str", value, i))
            i = i2
        elif "0" <= ch <= "9":
            m = NUMBER_RE.match(text, i)
            assert m is not None
            raw = m.group(0)
            if len(raw) > 300:
                raise ExprSyntaxError(f"number too long at position {i}", i)
            number: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token("num", number, i))
            i = m.end()
        elif ch == "_" or (ch.isascii() and ch.isalpha()):
            i = _read_name(text, i, tokens)
        elif text.startswith(TWO_CHAR_OPS, i):
            tokens.append(Token("op", text[i : i + 2], i))
            i += 2
        elif ch in ONE_CHAR_OPS:
            tokens.append(Token("op", ch, i))
            i += 1
        else:
            raise ExprSyntaxError(f"unexpected character {ch!r} at position {i}", i)
    tokens.append(Token("end", None, n))
    return tokens


def _read_name(text: str, i: int, tokens: list[Token]) -> int:
    m = NAME_RE.match(text, i)
    assert m is not None
    word = m.group(0)
    if word in KEYWORDS:
        tokens.append(Token("kw", word, i))
    elif word in LITERAL_WORDS:
        tokens.append(Token("lit", LITERAL_WORDS[word], i))
    else:
        tokens.append(Token("name", word, i))
    return i + len(word)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        elif ch == quote:
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise ExprSyntaxError(f"unterminated string starting at position {start}", start)


# --- AST --------------------------------------------------------------------------------


class Node:
    """An expression node."""


@dataclass(frozen=True)
class Literal(Node):
    value: Any


@dataclass(frozen=True)
class Path(Node):
    """``a.b[0].c``: parts are names (str) or indices (int)."""

    parts: tuple[str | int, ...]

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.parts)


@dataclass(frozen=True)
class Attr(Node):
    """Field access on a computed value: ``(expr).name`` / ``expr[index]``."""

    target: Node
    key: Node


@dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class ListNode(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "not" | "-"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Between(Node):
    value: Node
    low: Node
    high: Node


@dataclass(frozen=True)
class Ternary(Node):
    cond: Node
    then: Node
    other: Node


# --- parser -----------------------------------------------------------------------------

CMP_OPS = frozenset({"==", "!=", ">", "<", ">=", "<="})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # helpers
    def peek(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, kind: str, value: Any = None) -> bool:
        tok = self.peek()
        return tok.kind == kind and (value is None or tok.value == value)

    def accept(self, kind: str, value: Any = None) -> Token | None:
        if self.at(kind, value):
            return self.advance()
        return None

    def expect(self, kind: str, value: Any, what: str) -> Token:
        tok = self.accept(kind, value)
        if tok is None:
            raise self.error(f"expected {what}")
        return tok

    def error(self, message: str) -> ExprSyntaxError:
        tok = self.peek()
        found = "end of expression" if tok.kind == "end" else repr(str(tok.value))
        return ExprSyntaxError(f"{message} at position {tok.pos} (found {found})", tok.pos)

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested deeper than {MAX_DEPTH} levels")

    # grammar
    def parse(self) -> Node:
        if self.at("end"):
            raise self.error("empty expression")
        node = self.expr()
        if not self.at("end"):
            raise self.error("unexpected token")
        return node

    def expr(self) -> Node:
        self.nested()
        try:
            node = self.or_expr()
            if self.accept("op", "?"):
                then = self.expr()
                self.expect("op", ":", "':' of the conditional expression")
                other = self.expr()
                node = Ternary(node, then, other)
            return node
        finally:
            self.depth -= 1

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.accept("kw", "or") or self.accept("op", "||"):
            node = Binary("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.accept("kw", "and") or self.accept("op", "&&"):
            node = Binary("and", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.accept("kw", "not") or self.accept("op", "!"):
            self.nested()
            try:
                return Unary("not", self.not_expr())
            finally:
                self.depth -= 1
        return self.comparison()

    def comparison(self) -> Node:
        node = self.additive()
        tok = self.peek()
        if tok.kind == "op" and tok.value in CMP_OPS:
            self.advance()
            return Binary(tok.value, node, self.additive())
        if tok.kind == "kw" and tok.value in ("contains", "matches"):
            self.advance()
            return Binary(tok.value, node, self.additive())
        if tok.kind == "kw" and tok.value == "between":
            self.advance()
            low = self.additive()
            self.expect("kw", "and", "'and' in 'between X and Y'")
            return Between(node, low, self.additive())
        return node

    def additive(self) -> Node:
        node = self.term()
        while self.peek().kind == "op" and self.peek().value in ("+", "-"):
            op = self.advance().value
            node = Binary(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().value in ("*", "/", "%"):
            op = self.advance().value
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.accept("op", "-"):
            self.nested()
            try:
                return Unary("-", self.unary())
            finally:
                self.depth -= 1
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            if self.accept("op", "."):
                node = self.member(node)
            elif self.accept("op", "["):
                index = self.expr()
                self.expect("op", "]", "']'")
                if (
                    isinstance(node, Path)
                    and isinstance(index, Literal)
                    and isinstance(index.value, (int, str))
                    and not isinstance(index.value, bool)
                ):
                    node = Path((*node.parts, index.value))
                    continue
                node = Attr(node, index)
            else:
                return node

    def member(self, node: Node) -> Node:
        tok = self.advance()
        if tok.kind in ("name", "kw"):
            name = str(tok.value)
        elif tok.kind == "lit":
            name = self.text[tok.pos : tok.pos + len(_literal_source(self.text, tok.pos))]
        elif tok.kind == "num" and isinstance(tok.value, int):
            return (
                Path((*node.parts, tok.value))
                if isinstance(node, Path)
                else Attr(node, Literal(tok.value))
            )
        else:
            self.i -= 1
            raise self.error("expected a field name after '.'")
        if self.at("op", "("):
            self.advance()
            args = self.args(")")
            return self.make_call(name, (node, *args), tok.pos)
        if isinstance(node, Path):
            return Path((*node.parts, name))
        return Attr(node, Literal(name))

    def args(self, closer: str) -> list[Node]:
        items: list[Node] = []
        if self.accept("op", closer):
            return items
        while True:
            items.append(self.expr())
            if self.accept("op", closer):
                return items
            self.expect("op", ",", f"',' or '{closer}'")

    def primary(self) -> Node:
        tok = self.advance()
        if tok.kind in ("num", "str", "lit"):
            return Literal(tok.value)
        if tok.kind == "kw" and tok.value in FUNCTIONS and self.at("op", "("):
            self.advance()
            return self.make_call(tok.value, tuple(self.args(")")), tok.pos)
        if tok.kind == "name":
            if self.accept("op", "("):
                return self.make_call(tok.value, tuple(self.args(")")), tok.pos)
            return Path((tok.value,))
        if tok.kind == "op" and tok.value == "(":
            node = self.expr()
            self.expect("op", ")", "')'")
            return node
        if tok.kind == "op" and tok.value == "[":
            self.nested()
            try:
                return ListNode(tuple(self.args("]")))
            finally:
                self.depth -= 1
        self.i -= 1
        raise self.error("expected a value")

    def make_call(self, name: str, args: Sequence[Node], pos: int) -> Node:
        if name not in FUNCTIONS:
            raise ExprSyntaxError(
                f"unknown function {name!r} at position {pos} "
                f"(known: {', '.join(sorted(FUNCTIONS))})",
                pos,
            )
        return Call(name, tuple(args))


def _literal_source(text: str, pos: int) -> str:
    m = NAME_RE.match(text, pos)
    return m.group(0) if m else ""


def parse(text: str) -> Node:
    """Parse one expression or raise ``ExprSyntaxError`` naming the position and token."""
    try:
        return _Parser(text).parse()
    except RecursionError as exc:  # pragma: no cover - MAX_DEPTH keeps us far below
        raise ExprSyntaxError("expression nested too deeply", 0) from exc


def walk(node: Node) -> list[Node]:
    """Every node of the tree (pre-order), iteratively."""
    out: list[Node] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        out.append(cur)
        if isinstance(cur, Attr):
            stack += [cur.key, cur.target]
        elif isinstance(cur, (Call, ListNode)):
            stack += list(reversed(cur.args if isinstance(cur, Call) else cur.items))
        elif isinstance(cur, Unary):
            stack.append(cur.operand)
        elif isinstance(cur, Binary):
            stack += [cur.right, cur.left]
        elif isinstance(cur, Between):
            stack += [cur.high, cur.low, cur.value]
        elif isinstance(cur, Ternary):
            stack += [cur.other, cur.then, cur.cond]
    return out


def paths(node: Node) -> list[Path]:
    return [n for n in walk(node) if isinstance(n, Path)]


# --- values -----------------------------------------------------------------------------


class _Missing:
    """Marker for a path that does not resolve."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

Resolver = Callable[[tuple[str | int, ...]], Any]


def truthy(value: Any) -> bool:
    """pipeline_ex truthiness: null, false, "", [], {} are false; everything else true."""
    if value is None or value is MISSING or value is False:
        return False
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    return True


def get_field(value: Any, key: str | int) -> Any:
    """One step of path navigation; MISSING when absent. ``length`` falls back to len()."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        if isinstance(key, int) and str(key) in value:
            return value[str(key)]
        if isinstance(key, str) and key.lstrip("-").isdigit() and int(key) in value:
            return value[int(key)]
    elif isinstance(value, (list, tuple, str)):
        idx = _as_index(key)
        if idx is not None and -len(value) <= idx < len(value):
            return value[idx]
    if key in ("length", "size", "count") and isinstance(value, (list, tuple, str, dict)):
        return len(value)
    return MISSING


def _as_index(key: Any) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    if isinstance(key, str) and key.lstrip("-").isdigit():
        return int(key)
    return None


def get_path(value: Any, parts: Sequence[str | int]) -> Any:
    for part in parts:
        value = get_field(value, part)
        if value is MISSING:
            return MISSING
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_number(value: Any) -> int | float | None:
    """Numbers as is; numeric strings parsed; anything else None."""
    if is_number(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        text = value.strip()
        if len(text) < 400 and NUMBER_RE.fullmatch(text.lstrip("+-")):
            try:
                return int(text)
            except ValueError:
                try:
                    return float(text)
                except ValueError:
                    return None
    return None


def to_text(value: Any) -> str:
    """How a value appears inside text: JSON for maps/lists, "" for null, true/false."""
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


# --- functions --------------------------------------------------------------------------


def _need_number(name: str, value: Any) -> int | float:
    num = to_number(value)
    if num is None:
        raise ExprEvalError(f"{name}() needs a number, got {_describe(value)}")
    return num


def _describe(value: Any) -> str:
    if value is None or value is MISSING:
        return "null"
    text = to_text(value)
    return f"{type(value).__name__} {text[:40]!r}"


def _numbers(name: str, args: Sequence[Any]) -> list[int | float]:
    values: list[Any] = (
        list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    )
    return [_need_number(name, v) for v in values]


def _length(value: Any) -> int:
    if value is None or value is MISSING:
        return 0
    if isinstance(value, (str, list, tuple, dict)):
        return len(value)
    return len(to_text(value))


def _pow(base: Any, exp: Any) -> int | float:
    b, e = _need_number("pow", base), _need_number("pow", exp)
    if abs(e) > MAX_EXPONENT:
        raise ExprEvalError(f"pow() exponent larger than {MAX_EXPONENT}")
    try:
        if isinstance(b, float) or isinstance(e, float) or e < 0:
            return float(b) ** e
        return _bounded(b**e)
    except (OverflowError, ZeroDivisionError) as exc:
        raise ExprEvalError(f"pow() failed: {exc}") from exc


def _round(value: Any, digits: Any = 0) -> int | float:
    num = _need_number("round", value)
    nd = int(_need_number("round", digits))
    return round(num) if nd == 0 else round(num, max(min(nd, 15), -15))


def _safe_float(name: str, fn: Callable[[float], Any], value: Any) -> Any:
    try:
        return fn(_need_number(name, value))
    except (ValueError, OverflowError) as exc:
        raise ExprEvalError(f"{name}() failed: {exc}") from exc


def _items(name: str, value: Any) -> list[Any]:
    if value is None or value is MISSING:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        return list(value.values())
    raise ExprEvalError(f"{name}() needs a list, got {_describe(value)}")


def _arith(name: str, op: str) -> Callable[..., Any]:
    def fn(a: Any, b: Any) -> Any:
        return arithmetic(op, _need_number(name, a), _need_number(name, b))

    return fn


def _duration(unit: str) -> Callable[[Any], float]:
    factor = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}[unit]

    def fn(value: Any) -> float:
        return float(_need_number(unit, value)) * factor

    return fn


def _contains_fn(a: Any, b: Any) -> bool:
    return contains(a, b)


def _matches_fn(a: Any, b: Any) -> bool:
    return matches(a, b)


def _between_fn(v: Any, lo: Any, hi: Any) -> bool:
    return compare("<=", lo, v) and compare("<=", v, hi)


def _average(*args: Any) -> float | None:
    nums = _numbers("average", args)
    return sum(nums) / len(nums) if nums else None


def _min(*args: Any) -> Any:
    nums = _numbers("min", args)
    return min(nums) if nums else None


def _max(*args: Any) -> Any:
    nums = _numbers("max", args)
    return max(nums) if nums else None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    # template functions (pipeline_ex's resolution order starts with these)
    "multiply": _arith("multiply", "*"),
    "add": _arith("add", "+"),
    "subtract": _arith("subtract", "-"),
    "divide": _arith("divide", "/"),
    "max": _max,
    "min": _min,
    "round": _round,
    "floor": lambda v: _safe_float("floor", math.floor, v),
    "ceil": lambda v: _safe_float("ceil", math.ceil, v),
    # condition functions
    "length": _length,
    "startsWith": lambda s, p: to_text(s).startswith(to_text(p)),
    "endsWith": lambda s, p: to_text(s).endswith(to_text(p)),
    "toLowerCase": lambda s: to_text(s).lower(),
    "toUpperCase": lambda s: to_text(s).upper(),
    "trim": lambda s: to_text(s).strip(),
    "any": lambda v: any(truthy(x) for x in _items("any", v)),
    "all": lambda v: all(truthy(x) for x in _items("all", v)),
    "count": lambda v: len(_items("count", v)) if not isinstance(v, str) else len(v),
    "sum": lambda *a: sum(_numbers("sum", a)),
    "average": _average,
    "isEmpty": lambda v: not truthy(v),
    "now": lambda: datetime.now(UTC).timestamp(),
    "days": _duration("days"),
    "hours": _duration("hours"),
    "minutes": _duration("minutes"),
    "seconds": _duration("seconds"),
    "abs": lambda v: abs(_need_number("abs", v)),
    "sqrt": lambda v: _safe_float("sqrt", math.sqrt, v),
    "pow": _pow,
    "between": _between_fn,
    "contains": _contains_fn,
    "matches": _matches_fn,
}
TEMPLATE_FUNCTIONS = frozenset(
    {"multiply", "add", "subtract", "divide", "max", "min", "round", "floor", "ceil"}
)


# --- operators --------------------------------------------------------------------------


MAX_INT_BITS = 3_000  # ~900 digits: far below Python's int-to-text limit


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise ExprEvalError("number too large")
    return value


def arithmetic(op: str, a: Any, b: Any) -> Any:
    """``+ - * / %`` on numbers (numeric strings coerced); ``+`` also joins text and lists."""
    return _bounded(_arithmetic(op, a, b))


def _arithmetic(op: str, a: Any, b: Any) -> Any:
    if op == "+" and isinstance(a, list) and isinstance(b, list):
        return a + b
    x, y = to_number(a), to_number(b)
    if x is None or y is None:
        if op == "+" and isinstance(a, str) and isinstance(b, (str, int, float)):
            return a + to_text(b)
        if op == "+" and isinstance(b, str) and isinstance(a, (int, float)):
            return to_text(a) + b
        raise ExprEvalError(f"cannot compute {_describe(a)} {op} {_describe(b)}")
    try:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            if isinstance(x, int) and isinstance(y, int) and y != 0 and x % y == 0:
                return x // y
            return x / y
        if op == "%":
            return x % y
    except ZeroDivisionError as exc:
        raise ExprEvalError(f"division by zero in {to_text(a)} {op} {to_text(b)}") from exc
    except OverflowError as exc:
        raise ExprEvalError(f"number too large in {op}") from exc
    raise ExprEvalError(f"unknown operator {op}")  # pragma: no cover


def equals(a: Any, b: Any) -> bool:
    """Equality with numeric-string coercion ("8" == 8) and MISSING as null."""
    a = None if a is MISSING else a
    b = None if b is MISSING else b
    if isinstance(a, bool) or isinstance(b, bool):
        if isinstance(a, str) or isinstance(b, str):
            return to_text(a).lower() == to_text(b).lower()
        return a is b if (isinstance(a, bool) and isinstance(b, bool)) else bool(a == b)
    if is_number(a) and is_number(b):
        return bool(a == b)
    if (is_number(a) and isinstance(b, str)) or (is_number(b) and isinstance(a, str)):
        x, y = to_number(a), to_number(b)
        return x is not None and y is not None and x == y
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - plain data only
        return False


def compare(op: str, a: Any, b: Any) -> bool:
    """``== != > < >= <=``; ordering of incomparable values (null, text vs number) is false."""
    if op == "==":
        return equals(a, b)
    if op == "!=":
        return not equals(a, b)
    x, y = to_number(a), to_number(b)
    if x is not None and y is not None and not isinstance(a, bool) and not isinstance(b, bool):
        pair: tuple[Any, Any] = (x, y)
    elif isinstance(a, str) and isinstance(b, str):
        pair = (a, b)
    else:
        return False
    left, right = pair
    if op == ">":
        return bool(left > right)
    if op == "<":
        return bool(left < right)
    if op == ">=":
        return bool(left >= right)
    return bool(left <= right)


def contains(container: Any, item: Any) -> bool:
    if container is None or container is MISSING:
        return False
    if isinstance(container, str):
        return to_text(item) in container
    if isinstance(container, dict):
        return item in container if isinstance(item, (str, int)) else False
    if isinstance(container, (list, tuple)):
        return any(equals(x, item) for x in container)
    return to_text(item) in to_text(container)


def matches(value: Any, pattern: Any) -> bool:
    """Regex search with capped pattern/input size and a time limit."""
    pat = to_text(pattern)
    if len(pat) > MAX_PATTERN_CHARS:
        raise ExprEvalError(f"regex pattern longer than {MAX_PATTERN_CHARS} characters")
    text = to_text(value)
    if len(text) > MAX_MATCH_INPUT_CHARS:
        raise ExprEvalError(f"text longer than {MAX_MATCH_INPUT_CHARS} characters for 'matches'")
    if _regex is not None:
        try:
            return _regex.search(pat, text, timeout=REGEX_TIMEOUT_S) is not None
        except TimeoutError as exc:
            raise ExprEvalError(f"regex {pat!r} took too long") from exc
        except _regex.error as exc:
            raise ExprEvalError(f"invalid regex {pat!r}: {exc}") from exc
    try:  # pragma: no cover - fallback without the regex module
        return re.search(pat, text) is not None
    except re.error as exc:  # pragma: no cover
        raise ExprEvalError(f"invalid regex {pat!r}: {exc}") from exc


# --- evaluation -------------------------------------------------------------------------


def evaluate(node: Node, resolve: Resolver) -> Any:
    """Evaluate ``node``; paths go to ``resolve`` (which returns ``MISSING`` when absent)."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Path):
        return resolve(node.parts)
    if isinstance(node, Attr):
        target = evaluate(node.target, resolve)
        key = evaluate(node.key, resolve)
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise ExprEvalError(f"cannot index with {_describe(key)}")
        return get_field(target, key)
    if isinstance(node, ListNode):
        return [_plain(evaluate(item, resolve)) for item in node.items]
    if isinstance(node, Call):
        return _call(node, resolve)
    if isinstance(node, Unary):
        value = evaluate(node.operand, resolve)
        if node.op == "not":
            return not truthy(value)
        return arithmetic("-", 0, value)
    if isinstance(node, Binary):
        return _binary(node, resolve)
    if isinstance(node, Between):
        value = evaluate(node.value, resolve)
        return compare(">=", value, evaluate(node.low, resolve)) and compare(
            "<=", value, evaluate(node.high, resolve)
        )
    if isinstance(node, Ternary):
        branch = node.then if truthy(evaluate(node.cond, resolve)) else node.other
        return evaluate(branch, resolve)
    raise ExprEvalError(f"unknown node {type(node).__name__}")  # pragma: no cover


def _plain(value: Any) -> Any:
    return None if value is MISSING else value


def _call(node: Call, resolve: Resolver) -> Any:
    fn = FUNCTIONS[node.name]
    args = [_plain(evaluate(arg, resolve)) for arg in node.args]
    try:
        return fn(*args)
    except ExprError:
        raise
    except TypeError as exc:
        raise ExprEvalError(f"{node.name}() called with {len(args)} argument(s)") from exc


def _binary(node: Binary, resolve: Resolver) -> Any:
    if node.op == "and":
        left = evaluate(node.left, resolve)
        return evaluate(node.right, resolve) if truthy(left) else left
    if node.op == "or":
        left = evaluate(node.left, resolve)
        return left if truthy(left) else evaluate(node.right, resolve)
    left = _plain(evaluate(node.left, resolve))
    right = _plain(evaluate(node.right, resolve))
    if node.op in CMP_OPS:
        return compare(node.op, left, right)
    if node.op == "contains":
        return contains(left, right)
    if node.op == "matches":
        return matches(left, right)
    return arithmetic(node.op, left, right)
