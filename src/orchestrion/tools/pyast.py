"""AST helpers shared by the static test and documentation tools; user code is never imported or run.

What is here: which files are tests and the dotted name a file is imported by; the public callables of a
module under test (`PublicCallable`, `CodeModule`); how names seen in a test module resolve to them
(imports, re-exports, star imports, base classes and statically obvious instance types); and readers of
type annotations and of a function's raise statements and branch conditions.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

_TEST_DIRS = frozenset({"tests", "test"})
_SOURCE_ROOTS = frozenset({"src", "lib"})
_NOT_CALLABLE_DECORATORS = frozenset({"overload", "abstractmethod", "setter", "deleter"})
_RESOLVE_DEPTH = 6


def is_test_file(name: str) -> bool:
    """True for test modules: `test_*.py`, `*_test.py`, `tests.py`, `conftest.py` and files under `tests/`."""
    path = PurePosixPath(name)
    return (
        path.name.startswith("test_")
        or path.stem.endswith("_test")
        or path.stem in _TEST_DIRS
        or path.name == "conftest.py"
        or any(part in _TEST_DIRS for part in path.parts[:-1])
    )


def module_name(name: str, packages: frozenset[str]) -> str:
    """The dotted name `name` is imported by: its chain of packages, or its path minus a `src/` root.

    Args:
        name: The file's relative POSIX path.
        packages: Directories that hold an `__init__.py` in the same upload.
    """
    path = PurePosixPath(name)
    dirs = path.parent.parts
    start = len(dirs)
    while start > 0 and "/".join(dirs[:start]) in packages:
        start -= 1
    if start == len(dirs):  # Not in a package: import by the path, as a namespace package would.
        start = 1 if dirs and dirs[0] in _SOURCE_ROOTS else 0
    parts = [*dirs[start:]] + ([] if path.stem == "__init__" else [path.stem])
    return ".".join(parts) or path.stem


def _package_of(name: str, module: str) -> str:
    return module if PurePosixPath(name).name == "__init__.py" else module.rpartition(".")[0]


def _decorator_names(node: FunctionNode | ast.ClassDef) -> set[str]:
    names = set()
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.add(ast.unparse(target).rpartition(".")[2])
    return names


@dataclass(frozen=True, kw_only=True)
class PublicCallable:
    """A public function, class or method of a module under test.

    Attributes:
        file: The module's file name.
        module: The module's dotted name.
        qualname: ``"f"``, ``"Class"`` or ``"Class.method"``.
        kind: ``"function"``, ``"class"`` or ``"method"``.
        line: First line of the definition (the `def`/`class` line).
        end_line: Last line of the definition.
        bases: Dotted names of a class's bases, as far as imports tell.
        node: The definition's AST.
    """

    file: str
    module: str
    qualname: str
    kind: str
    line: int
    end_line: int
    bases: tuple[str, ...] = ()
    node: FunctionNode | ast.ClassDef = field(compare=False, repr=False)

    @property
    def full_name(self) -> str:
        """Dotted module name plus qualname."""
        return f"{self.module}.{self.qualname}"

    @property
    def location(self) -> str:
        """``file:line``."""
        return f"{self.file}:{self.line}"

    @property
    def size(self) -> int:
        """Lines spanned by the definition."""
        return self.end_line - self.line + 1


@dataclass(frozen=True, kw_only=True)
class CodeModule:
    """A non-test module: its public callables and the names it imports (to follow re-exports)."""

    file: str
    module: str
    source: str = field(repr=False)
    callables: tuple[PublicCallable, ...]
    top_level: frozenset[str]
    imports: dict[str, str] = field(compare=False)
    stars: tuple[str, ...] = ()


def _import_names(tree: ast.Module, package: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """Local name -> dotted target for every import in `tree`, and the targets of star imports."""
    names: dict[str, str] = {}
    stars: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.partition(".")[0]
                names[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".") if package else []
                parents = parents[: max(len(parents) - node.level + 1, 0)]
                base = ".".join([*parents, *([node.module] if node.module else [])])
            for alias in node.names:
                if alias.name == "*":
                    stars.append(base)
                else:
                    names[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
    return names, tuple(stars)


def _dotted(expr: ast.expr, names: dict[str, str]) -> str | None:
    if isinstance(expr, ast.Name):
        return names.get(expr.id)
    if isinstance(expr, ast.Attribute):
        base = _dotted(expr.value, names)
        return f"{base}.{expr.attr}" if base else None
    return None


def _code_module(file: str, module: str, source: str, tree: ast.Module) -> CodeModule:
    imports, stars = _import_names(tree, _package_of(file, module))
    local = dict(imports)
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            local[stmt.name] = f"{module}.{stmt.name}"
    found: dict[str, PublicCallable] = {}

    def add(node: FunctionNode | ast.ClassDef, qualname: str, kind: str, bases: tuple[str, ...] = ()) -> None:
        if qualname.rpartition(".")[2].startswith("_") or _decorator_names(node) & _NOT_CALLABLE_DECORATORS:
            return
        end = node.end_lineno or node.lineno
        callable_ = PublicCallable(
            file=file,
            module=module,
            qualname=qualname,
            kind=kind,
            line=node.lineno,
            end_line=end,
            bases=bases,
            node=node,
        )
        found.setdefault(qualname, callable_)

    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            add(stmt, stmt.name, "function")
        elif isinstance(stmt, ast.ClassDef) and not stmt.name.startswith("_"):
            bases = tuple(d for d in (_dotted(b, local) for b in stmt.bases) if d)
            add(stmt, stmt.name, "class", bases)
            for item in stmt.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    add(item, f"{stmt.name}.{item.name}", "method")
    return CodeModule(
        file=file,
        module=module,
        source=source,
        callables=tuple(found.values()),
        top_level=frozenset(local),
        imports=imports,
        stars=stars,
    )


def _suffixes(module: CodeModule) -> list[str]:
    path = PurePosixPath(module.file)
    parts = [*path.parent.parts] + ([] if path.stem == "__init__" else [path.stem])
    return [".".join(parts[i:]) for i in range(len(parts))]


class _Resolver:
    """Resolves dotted names seen in tests to public callables, following re-exports and base classes."""

    def __init__(self, modules: Sequence[CodeModule]) -> None:
        self._modules = {m.module: m for m in modules}
        self._callables = {c.full_name: c for m in modules for c in m.callables}
        # The root a test suite imports from is unknown, so every path suffix names its module; on a
        # clash the shallower file wins, and a canonical dotted name always beats a suffix.
        self._by_suffix: dict[str, str] = {}
        for module in sorted(modules, key=lambda m: (m.file.count("/"), m.file)):
            for suffix in _suffixes(module):
                self._by_suffix.setdefault(suffix, module.module)
        self._by_suffix.update({m.module: m.module for m in modules})

    def resolve(self, dotted: str, depth: int = 0) -> PublicCallable | None:
        """The callable `dotted` names (the class when it names an unknown attribute of one), or None."""
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            module = self._by_suffix.get(".".join(parts[:cut]))
            if module is not None:
                return self._member(self._modules[module], parts[cut:], depth)
        return None

    def _member(self, module: CodeModule, rest: list[str], depth: int) -> PublicCallable | None:
        if not rest or depth > _RESOLVE_DEPTH:
            return None
        found = self._callables.get(f"{module.module}.{rest[0]}")
        if found is None:
            target = module.imports.get(rest[0])
            if target is None:
                stars = (self.resolve(f"{star}.{rest[0]}", depth + 1) for star in module.stars)
                return next((c for c in stars if c is not None), None)
            return self.resolve(".".join([target, *rest[1:]]), depth + 1)
        if len(rest) == 1 or found.kind != "class":
            return found
        return self.method(found, rest[1], depth) or found

    def method(self, cls: PublicCallable, name: str, depth: int = 0) -> PublicCallable | None:
        """`cls.name` if it is a public method of `cls` or of one of its bases."""
        found = self._callables.get(f"{cls.full_name}.{name}")
        if found is not None or depth > _RESOLVE_DEPTH:
            return found
        for base in cls.bases:
            parent = self.resolve(base, depth + 1)
            if parent is not None and parent.kind == "class" and parent is not cls:
                inherited = self.method(parent, name, depth + 1)
                if inherited is not None:
                    return inherited
        return None

    def class_of(self, dotted: str | None) -> PublicCallable | None:
        """The class `dotted` names, or None."""
        found = self.resolve(dotted) if dotted else None
        return found if found is not None and found.kind == "class" else None

    def knows(self, dotted: str) -> bool:
        """True when `dotted` names a module under test or something inside one."""
        parts = dotted.split(".")
        return any(".".join(parts[:cut]) in self._by_suffix for cut in range(len(parts), 0, -1))


@dataclass(frozen=True, kw_only=True)
class _Scope:
    """What a test module's names mean: its imports, star imports and the resolver."""

    names: dict[str, str]
    stars: tuple[str, ...]
    resolver: _Resolver

    @classmethod
    def of(cls, tree: ast.Module, package: str, resolver: _Resolver) -> _Scope:
        names, stars = _import_names(tree, package)
        return cls(names=names, stars=stars, resolver=resolver)

    def dotted(self, expr: ast.expr) -> str | None:
        found = _dotted(expr, self.names)
        if found is None and isinstance(expr, ast.Name):
            candidates = (f"{star}.{expr.id}" for star in self.stars)
            found = next((c for c in candidates if self.resolver.resolve(c) is not None), None)
        return found


def _target_key(expr: ast.expr) -> str | None:
    """``"x"`` for a variable, ``"self.x"`` for an attribute of self (unittest's setUp state)."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
        return f"self.{expr.attr}"
    return None


class _References(ast.NodeVisitor):
    """Collects the public callables one function or statement of a test module refers to."""

    def __init__(self, scope: _Scope, types: dict[str, str] | None = None) -> None:
        self.scope = scope
        self.types = dict(types or {})  # variable or "self.x" -> full name of the class of its value
        self.found: set[str] = set()
        self.loose: set[str] = set()  # attributes read on values of unknown type

    def references(self) -> frozenset[str]:
        """What was found, plus attributes on unknown receivers that are methods of a class in use."""
        resolver = self.scope.resolver
        classes = [c for c in map(resolver.class_of, self.found | set(self.types.values())) if c]
        for name in self.loose:
            self.found.update(m.full_name for c in classes if (m := resolver.method(c, name)))
        return frozenset(self.found)

    def instance_of(self, expr: ast.expr) -> str | None:
        """Full name of the class `expr` evaluates to an instance of, when it is statically obvious."""
        if isinstance(expr, ast.Call):
            found = self.scope.resolver.class_of(self.scope.dotted(expr.func))
            return found.full_name if found else None
        key = _target_key(expr)
        return self.types.get(key) if key else None

    def _add(self, dotted: str | None) -> None:
        found = self.scope.resolver.resolve(dotted) if dotted else None
        if found is not None:
            self.found.add(found.full_name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._add(self.scope.dotted(node))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            owner = self.instance_of(node.value)
            dotted = f"{owner}.{node.attr}" if owner else self.scope.dotted(node)
            if dotted:
                self._add(dotted)
            else:
                self.loose.add(node.attr)
        self.generic_visit(node)

    def _bind(self, target: ast.expr, value: ast.expr | None) -> None:
        key = _target_key(target)
        owner = self.instance_of(value) if value is not None else None
        if key and owner:
            self.types[key] = owner
        elif key:
            self.types.pop(key, None)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)
            self._bind(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        annotated = self.scope.resolver.class_of(self.scope.dotted(node.annotation))
        key = _target_key(node.target)
        if node.value is None and key and annotated:
            self.types[key] = annotated.full_name
        elif node.value is not None:
            self._bind(node.target, node.value)

    def visit_withitem(self, node: ast.withitem) -> None:
        self.generic_visit(node)
        if node.optional_vars is not None:
            self._bind(node.optional_vars, node.context_expr)


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)  # Evaluates literals only: never the user's code.
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _annotation(node: ast.expr | None) -> ast.expr | None:
    """The annotation as an expression, parsing string (forward-reference) annotations."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    return node


def _type_head(node: ast.expr | None) -> str | None:
    """`list` for ``list[int]``, `int` for ``int | None`` or ``Optional[int]``."""
    node = _annotation(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left_is_none = isinstance(node.left, ast.Constant) and node.left.value is None
        return _type_head(node.right if left_is_none else node.left)
    if isinstance(node, ast.Subscript):
        head = _type_head(node.value)
        return _type_head(node.slice) if head == "Optional" else head
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _optional(node: ast.expr | None) -> bool:
    node = _annotation(node)
    if isinstance(node, ast.Constant):
        return node.value is None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _optional(node.left) or _optional(node.right)
    if isinstance(node, ast.Subscript):
        head = _type_head(node.value)
        elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return head == "Optional" or (head == "Union" and any(_optional(e) for e in elements))
    return False


def _outcomes(node: FunctionNode) -> tuple[list[tuple[ast.expr, str, int]], list[tuple[str, int]]]:
    """The function's raise statements (exception, guarding condition, line) and branch conditions."""
    raises: list[tuple[ast.expr, str, int]] = []
    branches: list[tuple[str, int]] = []

    def walk(statements: Sequence[ast.stmt], guard: str) -> None:
        for stmt in statements:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue  # Nested definitions run later, if ever: their raises are not this function's.
            if isinstance(stmt, ast.If):
                condition = ast.unparse(stmt.test)
                branches.append((condition, stmt.lineno))
                walk(stmt.body, condition)
                walk(stmt.orelse, f"not ({condition})")
            elif isinstance(stmt, ast.Match):
                for case in stmt.cases:
                    condition = f"{ast.unparse(stmt.subject)} matches {ast.unparse(case.pattern)}"
                    branches.append((condition, case.pattern.lineno))
                    walk(case.body, condition)
            elif isinstance(stmt, ast.Raise) and stmt.exc is not None:
                exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
                raises.append((exc, guard, stmt.lineno))
            else:
                for name in ("body", "orelse", "finalbody"):
                    walk(getattr(stmt, name, []), guard)
                for handler in getattr(stmt, "handlers", []):
                    walk(handler.body, guard)

    walk(node.body, "")
    return raises, branches
