"""The shape of the code: layers import downwards only, no import cycle, small files.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a lazy import
still ties the two modules together, and a cycle through one is a layering mistake.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rag", "connectors")
MAX_LINES = 420  # "about 400"


def module_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The project modules ``name`` imports (``from pkg import sub`` counts as ``pkg.sub``
    when ``sub`` is a module, else as ``pkg``)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in modules else base)
    return {t for t in targets if t in modules and t != name}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    names = set(files)
    return {name: imports_of(name, path, names) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_relative_and_from_imports_are_resolved(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .mod import thing\n")
    (pkg / "mod.py").write_text("from pkg import other\nimport pkg.other\n")
    (pkg / "other.py").write_text("")
    modules = {"pkg", "pkg.mod", "pkg.other"}
    assert imports_of("pkg", pkg / "__init__.py", modules) == {"pkg.mod"}
    assert imports_of("pkg.mod", pkg / "mod.py", modules) == {"pkg.other"}


def test_no_import_cycle_in_rag_or_connectors() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the walk found the project
    assert cycles(graph) == []


def layer_of(module: str) -> str:
    """``rag.X`` for anything under ``rag/X``; ``connectors`` as one layer."""
    return ".".join(module.split(".")[:2]) if module.startswith("rag.") else module.split(".")[0]


def test_no_cycle_between_layers() -> None:
    """Importing ``rag.a.x`` runs ``rag/a/__init__.py`` too: two folders that import each other
    point both ways even when no two modules do."""
    layers: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        layers.setdefault(layer_of(module), set()).update(layer_of(t) for t in targets)
    for layer, targets in layers.items():
        targets.discard(layer)
    assert cycles(layers) == []


def test_lower_layers_do_not_import_upper_ones() -> None:
    graph = import_graph()
    rules = {
        "rag.retrieval": ("rag.index", "rag.answering", "rag.generation", "rag.eval"),
        "rag.stores": ("rag.index", "rag.retrieval", "rag.answering", "rag.eval"),
        "rag.encoders": ("rag.index", "rag.retrieval", "rag.stores", "rag.answering", "rag.tuning"),
        "rag.tuning": ("rag.index", "rag.retrieval", "rag.stores", "rag.answering", "rag.eval"),
        "rag.chunking": ("rag.index", "rag.encoders", "rag.stores", "rag.retrieval"),
        "rag.confidence": ("rag.generation", "rag.answering", "rag.retrieval", "rag.index"),
        "rag.generation": ("rag.answering", "rag.retrieval", "rag.index"),
        "connectors": ("rag.index", "rag.retrieval", "rag.stores", "rag.encoders"),
    }
    wrong = []
    for module, targets in sorted(graph.items()):
        for layer, forbidden in rules.items():
            if module == layer or module.startswith(layer + "."):
                wrong += [(module, t) for t in sorted(targets) if t.startswith(forbidden)]
    plain_data = {m: t for m, t in graph.items() if layer_of(m) == "rag.types"}
    # plain data imports nothing of the project but itself
    assert {m: [t for t in ts if layer_of(t) != "rag.types"] for m, ts in plain_data.items()} == {
        m: [] for m in plain_data
    }
    assert wrong == []


def test_no_file_over_about_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in module_files().values()
        if (n := len(path.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
