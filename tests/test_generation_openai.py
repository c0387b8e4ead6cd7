"""OpenAICompatibleGenerator against a canned OpenAI-format server on 127.0.0.1.

The server is scaffolding: it answers every prompt with the same two tokens and top-2 log-probs
taken from the hand-computed fixture of test_confidence.py (V = 4):
  "Paris": p = 1/2, alternative " Lyon" 1/4  (tail 1/4 -> 1/8, 1/8: the true P1)
  ".":     p = 1/4, alternative "!" 1/4      (tail 1/2 -> 1/4, 1/4: the true uniform P2)
so with vocab_size=4 the top-k approximation reproduces the exact scores.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag import confidence as C
from rag.generation import GenerationError, OpenAICompatibleGenerator
from rag.generation.testing import check_generator

L = math.log(2)
TOKENS = [
    {"token": "Paris", "logprob": -L, "top_logprobs": [(" Lyon", -2 * L), ("Paris", -L)]},
    {"token": ".", "logprob": -2 * L, "top_logprobs": [(".", -2 * L), ("!", -2 * L)]},
]


def _content(tokens):
    return [
        {
            "token": t["token"],
            "logprob": t["logprob"],
            "bytes": list(t["token"].encode()),
            "top_logprobs": [
                {"token": a, "logprob": lp, "bytes": None} for a, lp in t["top_logprobs"]
            ],
        }
        for t in tokens
    ]


class Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def _json(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body["_auth"] = self.headers.get("Authorization")
        body["_path"] = self.path
        Handler.requests.append(body)
        if body["model"] == "broken":
            return self._json(500, {"error": {"message": "model crashed"}})
        if body["model"] == "garbled":
            return self._json(200, {"unexpected": True})
        question = body["messages"][-1]["content"]
        tokens = TOKENS[: body.get("max_tokens", 16)]
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in [question, ": ", *(t["token"] for t in tokens)]:
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return None
        return self._json(
            200,
            {
                "id": "cmpl-1",
                "object": "chat.completion",
                "model": body["model"] + "-served",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": f"{question}: " + "".join(t["token"] for t in tokens),
                        },
                        "logprobs": {"content": _content(tokens)},
                        "finish_reason": "length" if len(tokens) < len(TOKENS) else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 11,
                    "completion_tokens": len(tokens),
                    "total_tokens": 13,
                },
            },
        )


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_meets_the_generator_contract(server):
    check_generator(OpenAICompatibleGenerator(server, "tiny"))


def test_parses_text_and_logprobs(server):
    gen = OpenAICompatibleGenerator(server, "tiny", api_key="sk-test", vocab_size=4).generate(
        "capital of France?", max_new_tokens=8, stop=["\n"], top_k_logprobs=2
    )
    request = Handler.requests[-1]
    assert request["_path"] == "/v1/chat/completions"
    assert request["_auth"] == "Bearer sk-test"
    assert request["messages"] == [{"role": "user", "content": "capital of France?"}]
    assert (request["logprobs"], request["top_logprobs"], request["max_tokens"]) == (True, 2, 8)
    assert request["stop"] == ["\n"] and request["temperature"] == 0.0
    assert gen.text == "capital of France?: Paris."
    assert (gen.model, gen.prompt_tokens, gen.finish_reason) == ("tiny-served", 11, "stop")
    assert [s.token for s in gen.steps] == ["Paris", "."]
    first = gen.steps[0]
    assert first.logprob == pytest.approx(-L)
    assert first.top_tokens == ("Paris", " Lyon")  # sorted best first
    assert list(first.top_logprobs) == pytest.approx([-L, -2 * L])
    assert first.token_id is None and not first.exact and first.vocab_size == 4


def test_metrics_from_top_k_match_the_hand_computed_values(server):
    gen = OpenAICompatibleGenerator(server, "tiny", vocab_size=4).generate("q", top_k_logprobs=2)
    assert C.score_all(gen) == pytest.approx(
        {
            "avg_logprob": -1.5 * L,
            "gini": 19 / 64,
            "entropy": -1.875 * L,
            "perplexity": -(2**1.875),
            "self_certainty": 0.125 * L,
        }
    )


def test_max_new_tokens_and_length_finish(server):
    gen = OpenAICompatibleGenerator(server, "tiny").generate("q", max_new_tokens=1)
    assert gen.finish_reason == "length" and len(gen.steps) == 1


def test_generate_many_keeps_the_order(server):
    prompts = [f"question {i}" for i in range(5)]
    gens = OpenAICompatibleGenerator(server, "tiny", concurrency=3).generate_many(prompts)
    assert [g.text.split(":")[0] for g in gens] == prompts


def test_stream_yields_the_deltas(server):
    pieces = list(OpenAICompatibleGenerator(server, "tiny").stream("Q"))
    assert pieces == ["Q", ": ", "Paris", "."]
    assert Handler.requests[-1]["stream"] is True


def test_http_error_is_reported_with_the_servers_message(server):
    with pytest.raises(GenerationError, match=r"HTTP 500.*model crashed"):
        OpenAICompatibleGenerator(server, "broken").generate("q")


def test_reply_that_is_not_a_completion(server):
    with pytest.raises(GenerationError, match="not a chat completion"):
        OpenAICompatibleGenerator(server, "garbled").generate("q")


def test_unreachable_server():
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GenerationError, match="could not reach"):
        OpenAICompatibleGenerator(f"http://127.0.0.1:{port}/v1", "m", timeout=5).generate("q")
