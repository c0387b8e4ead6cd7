"""The lower layers never import the upper ones: types import nothing of rag, confidence only
types, generation neither answering, retrieval nor the index; answering stays light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

RAG = Path(__file__).resolve().parents[1] / "rag"

ABOVE_GENERATION = ("rag.answering", "rag.retrieval", "rag.index", "rag.adapters", "rag.eval")
ABOVE_GENERATION += ("rag.commands", "rag.cli", "rag.stores", "rag.encoders", "rag.chunking")


def module_name(path: Path) -> str:
    parts = path.relative_to(RAG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function (lazy imports count)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
    return names


def rag_imports(*paths: Path) -> dict[str, set[str]]:
    out = {}
    for path in paths:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            out[module_name(f)] = {m for m in imported(f) if m == "rag" or m.startswith("rag.")}
    return out


def is_under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_types_import_only_types() -> None:
    for module, deps in rag_imports(RAG / "types").items():
        assert all(is_under(d, ("rag.types",)) for d in deps), (module, deps)


def test_confidence_imports_only_types() -> None:
    deps = rag_imports(RAG / "confidence.py")["rag.confidence"]
    assert deps and all(is_under(d, ("rag.types",)) for d in deps), deps


@pytest.mark.parametrize("module", ["rag.confidence", "rag.generation"])
def test_generation_and_confidence_import_nothing_above_them(module: str) -> None:
    path = RAG / "confidence.py" if module == "rag.confidence" else RAG / "generation"
    for name, deps in rag_imports(path).items():
        upward = sorted(d for d in deps if is_under(d, ABOVE_GENERATION))
        assert not upward, f"{name} imports {upward}"


def loaded_after(imports: str) -> list[str]:
    code = f"import json, sys\n{imports}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_generation_loads_no_upper_layer() -> None:
    loaded = loaded_after("import rag.generation, rag.confidence, rag.types")
    upward = [m for m in loaded if is_under(m, ABOVE_GENERATION)]
    assert upward == []


def test_importing_answering_loads_no_llm_backend() -> None:
    loaded = {m.split(".")[0] for m in loaded_after("import rag.answering")}
    assert not loaded & {"torch", "transformers", "llama_cpp", "langchain_core"}
    assert not any(is_under(m, ("rag.index", "rag.adapters", "rag.eval")) for m in loaded)
