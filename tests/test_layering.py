"""The package's imports go down the layers of docs/ARCHITECTURE.md and never form a cycle.

Every import of ``colorizer_lib`` is read with :mod:`ast`: module-level, function-local and
``TYPE_CHECKING`` ones, relative and absolute, ``from pkg import submodule`` resolved to the submodule,
and module names given as strings (the CLI imports its sub-command modules by name). The layer table
is read from the ``layers`` block of docs/ARCHITECTURE.md, so the document and the check cannot drift.

Run ``python tests/test_layering.py`` for the full report (edges, lazy imports and their reasons).
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "colorizer_lib"

# Function-local imports of the package's own modules that remain, by importing module (a module
# or a package prefix), with the reason. Lazy imports of optional third-party packages (onnxruntime,
# onnx, torchvision, gdown, yt_dlp, fastai, matplotlib, ipywidgets...) are not counted here.
LAZY_OWN_IMPORT_REASONS = {
    "colorizer_lib": "the package facade: `import colorizer_lib` stays cheap; Colorizer (torch) loads on first use",
    "colorizer_lib.cli": "the front door: `colorize --help` must not import torch, so each command imports "
                         "the library when it runs",
    "colorizer_lib.registry": "the weight records stay torch-free (`colorize --help` lists each model's render "
                              "factor); the architectures load only when a manifest or an architecture is needed",
    "colorizer_lib.training.sources": "fastai (training.data) loads only when a zip is unpacked, after the install "
                                      "cell; the Colab check is the notebook UI's",
    "colorizer_lib.video_cli": "`colorize video` checks its arguments before torch and the ffmpeg helpers load",
    "colorizer_lib.notebook": "the notebook UI shows before torch loads",
}

# The number of function-local imports of the package's own modules may only go down.
MAX_LAZY_OWN_IMPORTS = 35

# No module of the package may be longer than this (lines, as `wc -l` counts them).
MAX_MODULE_LINES = 600

# Modules allowed over MAX_MODULE_LINES while being split, with why. Empty since issue 15's split; a listed
# module that is already under the limit fails, so the list cannot go stale.
OVER_LINE_LIMIT_BEING_SPLIT: dict[str, str] = {}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module of the package
    kind: str  # "top", "local" (inside a function), "type" (TYPE_CHECKING) or "string" (a module name as text)
    line: int


def package_modules(root: Path = REPO) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` of the package (``pkg/__init__.py`` is ``pkg``)."""
    modules = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module a dotted name lives in (``colorizer_lib.io.load_image`` -> ``colorizer_lib.io``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_edges(modules: dict[str, Path]) -> list[Edge]:
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        kinds: dict[int, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for inner in ast.walk(node):
                    kinds[id(inner)] = "type"
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                for inner in ast.walk(node):
                    kinds.setdefault(id(inner), "local")
        # `[python, "-m", "colorizer_lib.cli", ...]` starts another process: not an import.
        run_as_program = {id(seq.elts[i + 1]) for seq in ast.walk(tree) if isinstance(seq, (ast.List, ast.Tuple))
                          for i, elt in enumerate(seq.elts[:-1])
                          if isinstance(elt, ast.Constant) and elt.value == "-m"}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    full = ".".join(base + ([node.module] if node.module else []))
                else:
                    full = node.module or ""
                # `from pkg import sub` imports the submodule; `from mod import name` the module.
                targets = [f"{full}.{a.name}" if f"{full}.{a.name}" in modules else full for a in node.names]
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules
                  and node.value.startswith(PACKAGE + ".") and id(node) not in run_as_program):
                edges.append(Edge(module, node.value, "string", node.lineno))
                continue
            for target in targets:
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    owner = _owner(target, modules)
                    if owner is None:
                        raise AssertionError(f"{path}:{node.lineno} imports {target}, which does not exist")
                    if owner != module:
                        edges.append(Edge(module, owner, kinds.get(id(node), "top"), node.lineno))
    return sorted(set(edges), key=lambda e: (e.source, e.line, e.target))


def _bound_names(tree: ast.Module) -> set[str] | None:
    """Names a module defines at its top level (None: it has a module ``__getattr__``, anything goes)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == "__getattr__" and node in tree.body:
                return None
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def missing_names(modules: dict[str, Path], also: dict[str, Path] | None = None) -> list[str]:
    """``from colorizer_lib.x import name`` where ``x`` defines no ``name`` (a function moved away),
    in the package's modules and in the files of ``also`` (tests, benchmarks: name -> path)."""
    trees = {m: ast.parse(p.read_text(encoding="utf-8")) for m, p in modules.items()}
    bound = {m: _bound_names(t) for m, t in trees.items()}
    paths = {**modules, **(also or {})}
    importers = {**trees, **{m: ast.parse(p.read_text(encoding="utf-8")) for m, p in (also or {}).items()}}
    problems = []
    for module, tree in importers.items():
        package = module if paths[module].name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                full = ".".join(base + ([node.module] if node.module else []))
            else:
                full = node.module or ""
            if full not in modules or bound[full] is None:
                continue
            for alias in node.names:
                if f"{full}.{alias.name}" not in modules and alias.name not in bound[full]:
                    problems.append(f"{paths[module]}:{node.lineno} imports {alias.name} from {full}, "
                                    f"which has no such name")
    return problems


def layer_table(doc: Path = REPO / "docs" / "ARCHITECTURE.md") -> list[list[str]]:
    """The ``layers`` block of docs/ARCHITECTURE.md: one layer a line, bottom first, ``#`` comments."""
    match = re.search(r"```layers\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    assert match, f"{doc} has no ```layers block"
    layers = []
    for line in match.group(1).splitlines():
        names = line.split("#")[0].split()
        if names:
            layers.append([PACKAGE if n == PACKAGE else f"{PACKAGE}.{n}" for n in names])
    return layers


def layer_of(module: str, layers: list[list[str]]) -> int | None:
    """Index of the layer whose entry is ``module`` or a package above it (the longest match wins)."""
    best, best_len = None, -1
    for index, names in enumerate(layers):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best_len:
                best, best_len = index, len(name)
    return best


def find_cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index, low, on_stack, stack, components, counter = {}, {}, set(), [], [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def _lazy_own(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if e.kind == "local"]


def _reason(module: str) -> str | None:
    for name in sorted(LAZY_OWN_IMPORT_REASONS, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return LAZY_OWN_IMPORT_REASONS[name]
    return None


def module_lines(root: Path = REPO) -> dict[str, int]:
    """Line count of every ``.py`` of the package, by path relative to ``root`` (``colorizer_lib/cli.py``)."""
    return {path.relative_to(root).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
            for path in sorted((root / PACKAGE).rglob("*.py"))}


def line_limit_problems(lines: dict[str, int], limit: int = MAX_MODULE_LINES,
                        allowed: dict[str, str] | None = None) -> list[str]:
    """Modules over ``limit`` that ``allowed`` does not list, and listed modules that no longer are
    over it (or no longer exist), each as a sentence saying what to do."""
    allowed = OVER_LINE_LIMIT_BEING_SPLIT if allowed is None else allowed
    problems = [f"{path} has {count} lines, over the limit of {limit}: split it into modules that each own one "
                f"thing (docs/ARCHITECTURE.md, one paragraph per module)"
                for path, count in sorted(lines.items()) if count > limit and path not in allowed]
    problems += [f"{path} is listed in OVER_LINE_LIMIT_BEING_SPLIT but has "
                 f"{lines[path] if path in lines else 'no file and so 0'} lines (limit {limit}): remove it from the list"
                 for path in sorted(allowed) if lines.get(path, 0) <= limit]
    return problems


def layers_report(modules: dict[str, Path], layers: list[list[str]]) -> str:
    """The layers, bottom first, each with its entries and how many modules each entry holds."""
    lines = [f"{len(layers)} layers (bottom first), {len(modules)} modules:"]
    for index, names in enumerate(layers):
        counts = {name: sum(1 for m in modules if layer_of(m, layers) == index
                            and (m == name or m.startswith(name + "."))) for name in names}
        entries = ", ".join(f"{name.removeprefix(PACKAGE + '.')} ({n})" for name, n in counts.items())
        lines.append(f"  {index:2d}. {sum(counts.values()):3d} module(s): {entries}")
    return "\n".join(lines)


def largest_report(lines: dict[str, int], top: int = 10) -> str:
    biggest = sorted(lines.items(), key=lambda item: (-item[1], item[0]))[:top]
    rows = [f"largest modules (limit {MAX_MODULE_LINES} lines; being split: "
            f"{', '.join(OVER_LINE_LIMIT_BEING_SPLIT) or 'none'}):"]
    rows += [f"  {count:5d}  {path}" for path, count in biggest]
    return "\n".join(rows)


def report(edges: list[Edge]) -> str:
    lazy = _lazy_own(edges)
    lines = [f"{len(lazy)} function-local import(s) of the package's own modules remain (limit {MAX_LAZY_OWN_IMPORTS}):"]
    by_module: dict[str, list[Edge]] = {}
    for e in lazy:
        by_module.setdefault(e.source, []).append(e)
    for module, group in sorted(by_module.items()):
        targets = ", ".join(f"{e.target.removeprefix(PACKAGE + '.')}:{e.line}" for e in group)
        lines.append(f"  {module} ({len(group)}): {targets}\n      why: {_reason(module)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# tests


def test_no_import_cycles():
    cycles = find_cycles(import_edges(package_modules()))
    assert not cycles, "import cycles (module-level and function-local imports together):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_every_imported_name_exists():
    """Moving a function must move every import of it: checked for function-local imports too,
    which only fail when the code path runs."""
    others = {".".join(p.relative_to(REPO).with_suffix("").parts): p
              for folder in ("tests", "benchmarks", "docs") for p in sorted((REPO / folder).rglob("*.py"))}
    problems = missing_names(package_modules(), others)
    assert not problems, "\n".join(problems)


def test_imports_only_go_down_the_layers():
    modules = package_modules()
    layers = layer_table()
    unplaced = sorted(m for m in modules if layer_of(m, layers) is None)
    assert not unplaced, f"modules missing from the layers block of docs/ARCHITECTURE.md: {unplaced}"
    upward = [e for e in import_edges(modules) if layer_of(e.target, layers) > layer_of(e.source, layers)]
    assert not upward, "imports that go up the layers of docs/ARCHITECTURE.md:\n" + "\n".join(
        f"  {e.source}:{e.line} ({e.kind}) -> {e.target}" for e in upward)


def test_lazy_imports_of_own_modules_are_few_and_explained():
    edges = import_edges(package_modules())
    lazy = _lazy_own(edges)
    unexplained = sorted({e.source for e in lazy if _reason(e.source) is None})
    assert not unexplained, f"function-local imports of own modules without a reason: {unexplained}"
    stale = sorted(k for k in LAZY_OWN_IMPORT_REASONS if not any(_reason(e.source) == LAZY_OWN_IMPORT_REASONS[k]
                                                                 for e in lazy))
    assert not stale, f"LAZY_OWN_IMPORT_REASONS explains modules that no longer import lazily: {stale}"
    assert len(lazy) <= MAX_LAZY_OWN_IMPORTS, report(edges)


def test_no_module_is_over_the_line_limit():
    problems = line_limit_problems(module_lines())
    assert not problems, "\n".join(problems)


def test_the_line_limit_check_catches_new_and_stale_entries():
    limit = 600
    allowed = {"pkg/big.py": "being split"}
    assert line_limit_problems({"pkg/big.py": 601, "pkg/small.py": 600}, limit, allowed) == []
    new, = line_limit_problems({"pkg/big.py": 601, "pkg/other.py": 601}, limit, allowed)
    assert new.startswith("pkg/other.py has 601 lines, over the limit of 600")
    stale, = line_limit_problems({"pkg/big.py": 600}, limit, allowed)
    assert stale.startswith("pkg/big.py is listed in OVER_LINE_LIMIT_BEING_SPLIT but has 600 lines")
    gone, = line_limit_problems({}, limit, allowed)
    assert "pkg/big.py is listed" in gone and "no file" in gone


def test_report():
    """Prints the layers, the lazy imports with their reasons and the largest modules: read it with
    ``pytest -s`` or ``pytest -rP`` (or ``python tests/test_layering.py``, which adds every edge)."""
    modules = package_modules()
    text = full_report(modules, import_edges(modules))
    print("\n" + text)
    assert "layers (bottom first)" in text and "largest modules" in text


def full_report(modules: dict[str, Path], edges: list[Edge]) -> str:
    return "\n\n".join([layers_report(modules, layer_table()), report(edges), largest_report(module_lines())])


def test_the_walker_sees_every_kind_of_import(tmp_path):
    """The checks above are only as good as the walker: a planted cycle of each import form is found."""
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")  # function-local, from-package-import-submodule
    (pkg / "sub" / "b.py").write_text(f"import {PACKAGE}.c\n")  # absolute
    (pkg / "c.py").write_text("from .a import f\n")  # relative, a name from a module
    (pkg / "d.py").write_text(f"COMMANDS = {{'x': '{PACKAGE}.a'}}\n")  # a module named in a string
    edges = import_edges(package_modules(tmp_path))
    got = {(e.source, e.target, e.kind) for e in edges}
    assert got == {(f"{PACKAGE}.a", f"{PACKAGE}.sub.b", "local"), (f"{PACKAGE}.sub.b", f"{PACKAGE}.c", "top"),
                   (f"{PACKAGE}.c", f"{PACKAGE}.a", "top"), (f"{PACKAGE}.d", f"{PACKAGE}.a", "string")}
    assert find_cycles(edges) == [[f"{PACKAGE}.a", f"{PACKAGE}.c", f"{PACKAGE}.sub.b"]]
    layers = [[f"{PACKAGE}.c"], [f"{PACKAGE}.sub"], [f"{PACKAGE}.a", f"{PACKAGE}.d"]]
    assert layer_of(f"{PACKAGE}.sub.b", layers) == 1 and layer_of(f"{PACKAGE}.e", layers) is None
    (pkg / "e.py").write_text("def g():\n    from .c import f, gone\n")
    assert missing_names(package_modules(tmp_path)) == [f"{pkg / 'e.py'}:2 imports gone from {PACKAGE}.c, "
                                                        f"which has no such name"]


if __name__ == "__main__":
    all_edges = import_edges(package_modules())
    for edge in sorted(all_edges, key=lambda e: (e.source, e.target)):
        print(f"{edge.source} -> {edge.target} ({edge.kind}, line {edge.line})")
    print(full_report(package_modules(), all_edges))
    print("cycles:", find_cycles(all_edges) or "none")
