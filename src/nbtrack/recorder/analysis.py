"""What a cell reads and writes, from its AST alone: literal params, free names, bound names.

The analysis runs on the cell after IPython's own transforms, so ``x = !ls``
and ``%time f()`` are plain calls here and line numbers match the cell.
"""
from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from typing import Any

_PARSE_FLAGS = ast.PyCF_ONLY_AST | getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
_MAX_POW = 256
_MAX_STR = 10_000


class _NotLiteral(Exception):
    pass


def literal_value(node: ast.AST) -> Any:
    """Evaluate a literal or constant arithmetic (``1e-3``, ``2**10``, ``-1``); raise _NotLiteral otherwise."""
    if isinstance(node, ast.Constant):
        if node.value is Ellipsis:
            raise _NotLiteral
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [literal_value(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Set):
        return {literal_value(e) for e in node.elts}
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _NotLiteral
        return {literal_value(k): literal_value(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = literal_value(node.operand)
        if not isinstance(value, (int, float, complex)) or isinstance(value, bool):
            raise _NotLiteral
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp):
        left, right = literal_value(node.left), literal_value(node.right)
        if isinstance(left, str) and isinstance(right, str) and isinstance(node.op, ast.Add):
            if len(left) + len(right) > _MAX_STR:
                raise _NotLiteral
            return left + right
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
        if not numbers:
            raise _NotLiteral
        op = type(node.op)
        try:
            if op is ast.Add:
                return left + right
            if op is ast.Sub:
                return left - right
            if op is ast.Mult:
                return left * right
            if op is ast.Div:
                return left / right
            if op is ast.FloorDiv:
                return left // right
            if op is ast.Mod:
                return left % right
            if op is ast.Pow and abs(right) <= _MAX_POW and abs(left) <= 2**32:
                return left ** right
        except (ArithmeticError, ValueError):
            pass
    raise _NotLiteral


def is_literal(node: ast.AST) -> bool:
    try:
        literal_value(node)
        return True
    except (_NotLiteral, RecursionError):
        return False


@dataclass
class CellAnalysis:
    """The static facts about one cell."""

    tree: ast.Module | None
    syntax_error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)   # literal parameters, in order
    free: list[str] = field(default_factory=list)           # names read before the cell binds them
    bound: set[str] = field(default_factory=set)            # names bound at module scope
    deleted: set[str] = field(default_factory=set)          # names removed with ``del``
    loop_only: set[str] = field(default_factory=set)        # bound only as ``for`` targets: counters
    group_key: str = ""                                     # stable id when the cell has no name or id


class _Analyzer:
    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.free: dict[str, None] = {}
        self.binds: dict[str, int] = {}
        self.deleted: set[str] = set()
        self.loop_binds: dict[str, int] = {}

    # -- reads -------------------------------------------------------------
    def read(self, node: ast.AST | None, local: frozenset[str] = frozenset()) -> None:
        if node is None:
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and node.id not in local and node.id not in self.bound:
                self.free.setdefault(node.id)
            return
        if isinstance(node, ast.Lambda):
            self.read_nested(node.args, [node.body], local)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            inner = set(local)
            for gen in node.generators:
                self.read(gen.iter, frozenset(inner))
                inner |= _target_names(gen.target)
                for cond in gen.ifs:
                    self.read(cond, frozenset(inner))
            elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            for e in elts:
                self.read(e, frozenset(inner))
            return
        if isinstance(node, ast.NamedExpr):
            self.read(node.value, local)
            self.bind(node.target.id)
            return
        for child in ast.iter_child_nodes(node):
            self.read(child, local)

    def read_nested(self, args: ast.arguments, body: list[ast.AST], outer: frozenset[str]) -> None:
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.read(default, outer)
        local = set(outer) | {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
        local |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        for stmt in body:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                    local.add(node.id)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    local.add(node.name)
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    local |= {(a.asname or a.name).split(".")[0] for a in node.names}
        frozen = frozenset(local)
        for stmt in body:
            self.read(stmt, frozen)

    # -- binds -------------------------------------------------------------
    def bind(self, name: str, literal: bool = False) -> None:
        self.bound.add(name)
        self.deleted.discard(name)
        if not literal:
            self.binds[name] = self.binds.get(name, 0) + 1

    def bind_target(self, target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for e in target.elts:
                self.bind_target(e)
        elif isinstance(target, ast.Starred):
            self.bind_target(target.value)
        else:  # attribute or subscript: the base object is read
            self.read(target)

    # -- statements --------------------------------------------------------
    def stmts(self, body: list[ast.stmt]) -> None:
        for s in body:
            self.stmt(s)

    def stmt(self, s: ast.stmt) -> None:
        if isinstance(s, ast.Assign):
            self.read(s.value)
            for t in s.targets:
                self.bind_target(t)
        elif isinstance(s, ast.AugAssign):
            self.read(s.target if not isinstance(s.target, ast.Name) else
                      ast.Name(id=s.target.id, ctx=ast.Load()))
            self.read(s.value)
            self.bind_target(s.target)
        elif isinstance(s, ast.AnnAssign):
            self.read(s.value)
            if s.value is not None:
                self.bind_target(s.target)
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            self.read(s.iter)
            self.bind_target(s.target)
            for name in _target_names(s.target):
                self.loop_binds[name] = self.loop_binds.get(name, 0) + 1
            self.stmts(s.body)
            self.stmts(s.orelse)
        elif isinstance(s, (ast.While, ast.If)):
            self.read(s.test)
            self.stmts(s.body)
            self.stmts(s.orelse)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                self.read(item.context_expr)
                if item.optional_vars is not None:
                    self.bind_target(item.optional_vars)
            self.stmts(s.body)
        elif isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            self.stmts(s.body)
            for h in s.handlers:
                self.read(h.type)
                if h.name:
                    self.bind(h.name)
                self.stmts(h.body)
            self.stmts(s.orelse)
            self.stmts(s.finalbody)
        elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in s.decorator_list:
                self.read(d)
            self.read(s.returns)
            self.read_nested(s.args, s.body, frozenset())
            self.bind(s.name)
        elif isinstance(s, ast.ClassDef):
            for n in [*s.decorator_list, *s.bases, *(k.value for k in s.keywords)]:
                self.read(n)
            self.read_nested(ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[],
                                           defaults=[]), s.body, frozenset())
            self.bind(s.name)
        elif isinstance(s, (ast.Import, ast.ImportFrom)):
            for a in s.names:
                if a.name != "*":
                    self.bind((a.asname or a.name).split(".")[0])
        elif isinstance(s, ast.Delete):
            for t in s.targets:
                if isinstance(t, ast.Name):  # removing a name does not read its value
                    self.bound.discard(t.id)
                    self.deleted.add(t.id)
                    self.binds[t.id] = self.binds.get(t.id, 0) + 1
                else:
                    self.read(t)
        elif type(s).__name__ == "Match":
            self.read(s.subject)
            for case in s.cases:
                for node in ast.walk(case.pattern):
                    name = getattr(node, "name", None)
                    if isinstance(name, str):
                        self.bind(name)
                self.read(case.guard)
                self.stmts(case.body)
        else:
            self.read(s)


def _target_names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _literal_assignments(body: list[ast.stmt]) -> list[tuple[str, ast.expr]]:
    """(name, value node) of each unconditional top-level literal assignment."""
    found = []
    for s in body:
        if isinstance(s, ast.Assign):
            for t in s.targets:
                if isinstance(t, ast.Name) and is_literal(s.value):
                    found.append((t.id, s.value))
                elif (isinstance(t, (ast.Tuple, ast.List)) and isinstance(s.value, (ast.Tuple, ast.List))
                      and len(t.elts) == len(s.value.elts)):
                    for te, ve in zip(t.elts, s.value.elts):
                        if isinstance(te, ast.Name) and is_literal(ve):
                            found.append((te.id, ve))
        elif isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is not None \
                and is_literal(s.value):
            found.append((s.target.id, s.value))
    return found


def parse(source: str) -> ast.Module:
    return compile(source, "<cell>", "exec", _PARSE_FLAGS)


def analyze(source: str) -> CellAnalysis:
    """Analyse a (transformed) cell; a cell that does not parse gets an empty analysis."""
    try:
        tree = parse(source)
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as e:
        return CellAnalysis(tree=None, syntax_error=f"{type(e).__name__}: {e}")
    an = _Analyzer()
    try:
        an.stmts(tree.body)
    except RecursionError:
        pass
    literal = _literal_assignments(tree.body)
    counts: dict[str, int] = {}
    for name, _ in literal:
        counts[name] = counts.get(name, 0) + 1
    params: dict[str, Any] = {}
    for name, node in literal:
        # a name is a parameter only if every binding of it is a top-level literal assignment:
        # ``best = 0.0`` followed by ``best = max(best, acc)`` in a loop is a metric, not a param
        if an.binds.get(name, 0) == counts[name] and name in an.bound:
            params[name] = literal_value(node)
    masked = ast.dump(_mask_params(tree, set(params)), annotate_fields=False)
    key = "cell-" + hashlib.sha1(masked.encode()).hexdigest()[:10]
    loop_only = {n for n, c in an.loop_binds.items() if an.binds.get(n) == c}
    return CellAnalysis(tree=tree, params=params, free=list(an.free), bound=set(an.bound),
                        deleted=set(an.deleted), loop_only=loop_only, group_key=key)


class _Mask(ast.NodeTransformer):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        if any(isinstance(t, ast.Name) and t.id in self.names for t in node.targets):
            return ast.Assign(targets=node.targets, value=ast.Constant("<param>"))
        return node


def _mask_params(tree: ast.Module, names: set[str]) -> ast.Module:
    copy = ast.Module(body=list(tree.body), type_ignores=[])
    return _Mask(names).visit(copy) if names else copy


def literal_node(value: Any, like: ast.AST) -> ast.expr:
    """An AST node that evaluates to ``value``, located where ``like`` is."""
    node = ast.parse(repr(value), mode="eval").body
    for n in ast.walk(node):
        ast.copy_location(n, like)
        n.end_lineno, n.end_col_offset = like.end_lineno, like.end_col_offset
    return node


class OverrideParams(ast.NodeTransformer):
    """Replace the value of each overridden literal assignment at module level; the text stays."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides

    def visit_Module(self, node: ast.Module) -> ast.Module:
        for s in node.body:
            if isinstance(s, ast.Assign):
                for t in s.targets:
                    if isinstance(t, ast.Name) and t.id in self.overrides:
                        s.value = literal_node(self.overrides[t.id], s.value)
                    elif isinstance(t, (ast.Tuple, ast.List)) and isinstance(s.value, (ast.Tuple, ast.List)):
                        for i, te in enumerate(t.elts):
                            if isinstance(te, ast.Name) and te.id in self.overrides and i < len(s.value.elts):
                                s.value.elts[i] = literal_node(self.overrides[te.id], s.value.elts[i])
            elif isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) \
                    and s.target.id in self.overrides and s.value is not None:
                s.value = literal_node(self.overrides[s.target.id], s.value)
        return node
