"""The package's structure: layers that point down (docs/architecture.md draws the same table), no
import circle, no hidden function-level imports of the package, small modules and functions."""

import ast
from pathlib import Path

import hdgen_cli

ROOT = Path(hdgen_cli.__file__).parent
MAX_LINES = 400
MAX_FUNCTION_LINES = 80

# Top to bottom: a module may import its own package, a package of its own row, or any row below.
LAYERS = [
    ("cli", "__main__"),
    ("bench",),
    ("api",),
    ("report",),
    ("train",),
    ("loading",),
    ("parts",),
    ("checkpoint",),
    ("objectives", "sampling", "energy", "evaluation"),
    ("models", "data", "optim"),
    ("config", "interop", "registry", "records"),
    ("runs", "tensors", "files"),
    ("errors", "progress", "distributed"),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("hdgen_cli", *path.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _row(module: str) -> int:
    """The LAYERS row of `hdgen_cli.<top>...`; the package root (`hdgen_cli`, its version) sits below all."""
    top = module.split(".")[1] if "." in module else None
    if top is None:
        return len(LAYERS)
    rows = [i for i, names in enumerate(LAYERS) if top in names]
    assert rows, f"{module} is in no layer: add hdgen_cli.{top} to LAYERS and docs/architecture.md"
    return rows[0]


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import that points to a higher row."""
    return sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps if _row(d) < _row(m))


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """hdgen_cli modules imported anywhere in the file (function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hdgen_cli"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                found.add(full if full in modules else node.module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, ignoring a package's own re-exports of its submodules (a package's
    __init__ importing its children is how Python packages work, not a circle)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if node == nxt.rpartition(".")[0] or nxt == node.rpartition(".")[0]:
                continue  # package <-> its own submodule
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()))


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"p": {"p.x"}, "p.x": {"q"}, "q": set()}) is None


def test_every_import_points_down_the_layers():
    """Module-level and function-level imports alike (`_imports` walks the whole file)."""
    assert not _upward(_graph())


def test_the_layer_check_catches_a_planted_upward_import():
    planted = {"hdgen_cli.models.wrn": {"hdgen_cli.train.trainer", "hdgen_cli.errors"},
               "hdgen_cli.sampling.sgld": {"hdgen_cli.energy.base"},  # same row: allowed
               "hdgen_cli.api.sample": {"hdgen_cli.loading"}}
    assert _upward(planted) == ["hdgen_cli.models.wrn -> hdgen_cli.train.trainer"]
    graph = _graph()
    graph["hdgen_cli.files"] = graph["hdgen_cli.files"] | {"hdgen_cli.parts"}
    assert _upward(graph) == ["hdgen_cli.files -> hdgen_cli.parts"]


def _function_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, module, carries a `# deferred:` reason) for every import inside a function."""
    lines, found = path.read_text().splitlines(), []
    for fn in ast.walk(ast.parse(path.read_text())):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            group = [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
            reason = any("# deferred:" in lines[n.lineno - 1] for n in group)
            for n in group:
                name = n.module if isinstance(n, ast.ImportFrom) else n.names[0].name
                found.append((n.lineno, name or "", reason))
    return found


def test_function_level_imports_outside_the_cli_only_defer_a_slow_or_optional_dependency():
    """The package's own modules are imported at the top, so the import graph is what a reader
    sees; the CLI defers everything so `hdgen --help` starts fast."""
    offenders = [f"{p.relative_to(ROOT)}:{line} {name}" for p in ROOT.rglob("*.py") if "cli" not in p.relative_to(ROOT).parts[:1]
                 for line, name, reason in _function_imports(p) if name.startswith("hdgen_cli") or not reason]
    assert not offenders


def test_no_function_over_about_80_lines():
    long = [f"{p.relative_to(ROOT)}:{n.name} ({n.end_lineno - n.lineno + 1})" for p in ROOT.rglob("*.py")
            for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long


def test_no_module_over_about_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long
