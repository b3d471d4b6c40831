"""Python source -> normalised token streams for the similarity check (grader/similarity/).

The stream is read off the syntax tree (``ast``), never off the text, so formatting, comments,
parentheses and line breaks do not exist in it. What a copier changes cheaply is normalised away:

* every name the file binds itself (variables, parameters, functions, classes, attributes it
  assigns such as ``self.w_q``) becomes ``V``; names it does not bind keep their identity
  (builtins such as ``range``, library attributes such as ``.transpose``), and an imported module
  or name becomes its full dotted path, so ``F.softmax`` and ``torch.nn.functional.softmax`` are
  one token;
* numbers become ``N`` and strings ``S``; type annotations are dropped;
* docstrings and other bare expressions, ``print(...)`` statements, ``pass``, imports and dead stores
  (assignments to names the file never reads: padding) are removed.

Each function (each method of a class) is its own *unit*, as are a class's other statements and
the module's top-level statements; k-grams never cross units, so reordering functions or methods
(or moving code between notebook cells) does not change a file's fingerprints.

A file that does not parse falls back to Python's tokenizer with the same normalisation of names
and literals (no units). Nothing here executes student code.
"""
from __future__ import annotations

import ast
import builtins
import io
import keyword
import tokenize
from dataclasses import dataclass, field

_BUILTINS = frozenset(dir(builtins))
_DROP_FIELDS = {"ctx", "type_comment", "annotation", "returns", "type_params", "kind"}


@dataclass
class Unit:
    name: str                                   # "f", "Class.method", "<module>", "Class"
    tokens: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)   # line of each token (1-based, in the source given)


def _module_aliases(tree: ast.AST) -> dict[str, str]:
    """Names bound by imports -> the dotted path they stand for."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                if a.name != "*":
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _bound_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(names the file binds, attribute names it assigns)."""
    names: set[str] = set()
    attrs: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            attrs.add(node.attr)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
    return names, attrs


def _is_noise(stmt: ast.stmt, loaded: frozenset | None = None) -> bool:
    """Docstrings and other bare expressions without a call, print(...) calls, pass, imports, and
    dead stores: an assignment whose every target is a name the file never reads (padding)."""
    if isinstance(stmt, (ast.Pass, ast.Import, ast.ImportFrom)):
        return True
    if isinstance(stmt, ast.Expr):
        v = stmt.value
        if not isinstance(v, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "print":
            return True
    if loaded is not None and isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        names = []
        for t in targets:
            for node in ast.walk(t):
                if isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)) and node is not t:
                    return False
            if isinstance(t, ast.Name):
                names.append(t.id)
            elif isinstance(t, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Name) for e in t.elts):
                names += [e.id for e in t.elts]
            else:
                return False
        return bool(names) and not any(n in loaded for n in names)
    return False


class _Emitter:
    def __init__(self, aliases: dict[str, str], names: set[str], attrs: set[str], loaded: frozenset):
        self.loaded = loaded
        self.aliases = aliases
        self.names = names
        self.attrs = attrs
        self.unit: Unit | None = None

    def emit(self, tok: str, line: int) -> None:
        self.unit.tokens.append(tok)
        self.unit.lines.append(line)

    def name(self, ident: str) -> str:
        if ident in self.aliases and ident not in self.names:
            return "M:" + self.aliases[ident]
        if ident in self.names:
            return "V"
        return ident if ident in _BUILTINS else "V"

    def dotted(self, node: ast.AST) -> str | None:
        """``F.softmax`` -> ``M:torch.nn.functional.softmax`` when its base is an imported name."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases and node.id not in self.names:
            return "M:" + ".".join([self.aliases[node.id], *reversed(parts)])
        return None

    def body(self, stmts: list, line: int) -> None:
        for s in stmts:
            if not _is_noise(s, self.loaded):
                self.visit(s, line)

    def visit(self, node, line: int) -> None:
        if node is None:
            return
        if isinstance(node, list):
            for item in node:
                self.visit(item, line)
            return
        if not isinstance(node, ast.AST):
            return
        line = getattr(node, "lineno", line) or line
        if isinstance(node, ast.Name):
            self.emit(self.name(node.id), line)
        elif isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or v is None or v is Ellipsis:
                self.emit(repr(v), line)
            elif isinstance(v, (int, float, complex)):
                self.emit("N", line)
            else:
                self.emit("S", line)
        elif isinstance(node, ast.JoinedStr):
            self.emit("S", line)
        elif isinstance(node, ast.Attribute):
            full = self.dotted(node)
            if full:
                self.emit(full, line)
            else:
                self.visit(node.value, line)
                self.emit("." + ("V" if node.attr in self.attrs else node.attr), line)
        elif isinstance(node, ast.arg):
            self.emit("arg", line)
        elif isinstance(node, ast.keyword):
            # keyword names are normalised too: a parameter of the file's own function is renamed
            # with it, and the same word may be a local variable and a library keyword
            self.emit("kw" if node.arg else "kw**", line)
            self.visit(node.value, line)
        elif isinstance(node, (ast.BinOp, ast.AugAssign)):
            self.emit(f"{type(node).__name__}:{type(node.op).__name__}", line)
            if isinstance(node, ast.BinOp):
                self.visit(node.left, line)
                self.visit(node.right, line)
            else:
                self.visit(node.target, line)
                self.visit(node.value, line)
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
                self.emit("N", line)  # -1 is a literal
            else:
                self.emit(f"Unary:{type(node.op).__name__}", line)
                self.visit(node.operand, line)
        elif isinstance(node, ast.BoolOp):
            self.emit(f"Bool:{type(node.op).__name__}", line)
            self.visit(node.values, line)
        elif isinstance(node, ast.Compare):
            self.emit("Cmp:" + ",".join(type(o).__name__ for o in node.ops), line)
            self.visit(node.left, line)
            self.visit(node.comparators, line)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            self.emit(type(node).__name__, line)
            self.visit(getattr(node, "decorator_list", []), line)
            self.visit(node.args, line)
            if isinstance(node, ast.Lambda):
                self.visit(node.body, line)
            else:
                self.body(node.body, line)
            self.emit("end", line)
        elif isinstance(node, ast.stmt) and any(isinstance(getattr(node, f, None), list) and getattr(node, f)
                                                and isinstance(getattr(node, f)[0], ast.stmt)
                                                for f in ("body", "orelse", "finalbody")):
            # compound statements (if/for/while/with/try/class): their blocks without noise
            self.emit(type(node).__name__, line)
            for fname, value in ast.iter_fields(node):
                if fname in _DROP_FIELDS:
                    continue
                if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                    self.emit(f"{fname}:", line)
                    self.body(value, line)
                else:
                    self.visit(value, line)
            self.emit("end", line)
        else:
            self.emit(type(node).__name__, line)
            for fname, value in ast.iter_fields(node):
                if fname in _DROP_FIELDS or isinstance(value, (ast.expr_context, ast.operator)):
                    continue
                self.visit(value, line)


def units_from_ast(tree: ast.Module) -> list[Unit]:
    aliases = _module_aliases(tree)
    names, attrs = _bound_names(tree)
    loaded = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
    em = _Emitter(aliases, names, attrs, loaded)
    units: list[Unit] = []
    module = Unit("<module>")

    def run(unit: Unit, node, line: int, as_body: bool = False) -> None:
        em.unit = unit
        if as_body:
            em.body(node, line)
        else:
            em.visit(node, line)

    for stmt in tree.body:
        if _is_noise(stmt, loaded):
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            u = Unit(stmt.name)
            run(u, stmt, stmt.lineno)
            units.append(u)
        elif isinstance(stmt, ast.ClassDef):
            head = Unit(stmt.name)
            em.unit = head
            em.emit("ClassDef", stmt.lineno)
            em.visit(stmt.bases, stmt.lineno)
            em.visit(stmt.keywords, stmt.lineno)
            em.visit(stmt.decorator_list, stmt.lineno)
            for item in stmt.body:
                if _is_noise(item, loaded):
                    continue
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    u = Unit(f"{stmt.name}.{item.name}")
                    run(u, item, item.lineno)
                    units.append(u)
                else:
                    run(head, item, item.lineno)
            units.append(head)
        else:
            run(module, stmt, stmt.lineno)
    if module.tokens:
        units.append(module)
    return [u for u in units if u.tokens]


def units_from_tokens(source: str) -> list[Unit]:
    """The fallback for a file that does not parse: its tokens, names and literals normalised."""
    unit = Unit("<tokens>")
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                            tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER):
                continue
            if tok.type == tokenize.NAME:
                text = tok.string if (keyword.iskeyword(tok.string) or tok.string in _BUILTINS) else "V"
            elif tok.type == tokenize.NUMBER:
                text = "N"
            elif tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_START", -1):
                text = "S"
            elif tok.type in (getattr(tokenize, "FSTRING_MIDDLE", -1), getattr(tokenize, "FSTRING_END", -1)):
                continue
            else:
                text = tok.string
            unit.tokens.append(text)
            unit.lines.append(tok.start[0])
    except (tokenize.TokenError, IndentationError, SyntaxError, ValueError):
        pass  # what was read before the error still counts
    return [unit] if unit.tokens else []


def parse_units(source: str) -> tuple[list[Unit], bool]:
    """(units, parsed): the syntax-tree streams, or the tokenizer fallback (parsed False)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return units_from_tokens(source), False
    try:
        return units_from_ast(tree), True
    except RecursionError:
        return units_from_tokens(source), False
