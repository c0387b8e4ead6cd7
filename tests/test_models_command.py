"""``rag models`` lists the registry."""

from __future__ import annotations

import argparse
import json

import pytest

from rag.commands import models as models_command


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="rag")
    models_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    return code, capsys.readouterr().out


def test_models_table_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["models"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "kind", "installed", "dim", "location"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) >= {"minilm", "mpnet", "wordllama", "bm25"}
    assert rows["minilm"][1:2] == ["dense"] and rows["minilm"][3] == "384"
    assert rows["bm25"][1:3] == ["lexical", "yes"]


def test_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["models", "--json"], capsys)
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["minilm"]["dim"] == 384 and rows["minilm"]["kind"] == "dense"
