"""`import rag` / `import connectors` stay light, and the CLI parser loads no backend."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "torch",
    "transformers",
    "sentence_transformers",
    "chromadb",
    "bm25s",
    "langchain_core",
    "llama_index",
    "wordllama",
    "unstructured",
    "llama_cpp",
    "onnxruntime",
]

PROBE = """
import json, sys
{imports}
heavy = {heavy!r}
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set(heavy))))
"""


def loaded_after(imports: str) -> list[str]:
    code = PROBE.format(imports=imports, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_rag_and_connectors_load_no_backend() -> None:
    assert loaded_after("import rag, connectors") == []


def test_core_modules_and_cli_parser_load_no_backend() -> None:
    imports = (
        "import rag.types, rag.base, rag.index, rag.tokens, rag.cli\n"
        "import connectors.directory\n"
        "rag.cli.build_parser()"
    )
    assert loaded_after(imports) == []


def test_import_sets_no_environment_variables() -> None:
    code = "import os; before = dict(os.environ); import rag, connectors; print(dict(os.environ) == before)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
