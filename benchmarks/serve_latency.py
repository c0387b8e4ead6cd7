"""Warm search latency through ``rag serve`` against a ``rag search`` process per query, on one
index, in the same run; optionally a screenshot of the search page after a query and an ask.

    python benchmarks/serve_latency.py --index .rag_index/demo [--queries 40] [--screenshot page.png]

Prints p50/p95 of sequential requests, of 8 concurrent clients, and the CLI's wall time per
query (model loading included: what a user waits for without a server).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

QUERIES = [
    "how does fusion combine the scores of several embedders?",
    "why keep a chunk's context?",
    "what happens when two ingests write one index?",
    "which file formats are read?",
    "how is a situated encoder trained?",
    "what does confident RAG choose?",
    "how are PDF pages kept?",
    "what is reciprocal rank fusion?",
]
RAG = str(Path(sys.executable).with_name("rag"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(index: str, port: int, generator: str) -> subprocess.Popen:
    cmd = [RAG, "serve", "--index", index, "--port", str(port), "--generator", generator]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("rag serve did not answer /health within 300 s")


def percentiles(ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"{statistics.median(ms):8.1f} {p95:8.1f}"


def timed_search(client: httpx.Client, query: str) -> float:
    began = time.perf_counter()
    client.post("/search", json={"query": query, "k": 5}).raise_for_status()
    return (time.perf_counter() - began) * 1000


def screenshot(url: str, path: str, query: str) -> None:
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        page.goto(url + "/")
        page.fill("#query", query)
        page.click("#ask-button")
        page.wait_for_selector("#candidates tr.candidate", timeout=600_000)
        page.screenshot(path=path, full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--queries", type=int, default=40, help="requests per measurement")
    parser.add_argument("--cli-runs", type=int, default=3, help="rag search processes timed")
    parser.add_argument("--generator", default="echo", help="LLM for the screenshot's ask")
    parser.add_argument("--screenshot", default=None, help="save the page after an ask here")
    args = parser.parse_args()

    port = free_port()
    proc = start_server(args.index, port, args.generator)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            for q in QUERIES:  # warm: every query once
                timed_search(client, q)
            queries = [QUERIES[i % len(QUERIES)] for i in range(args.queries)]
            sequential = [timed_search(client, q) for q in queries]
            with ThreadPoolExecutor(8) as pool:
                began = time.perf_counter()
                concurrent = list(pool.map(lambda q: timed_search(client, q), queries))
                wall = time.perf_counter() - began
        cli = []
        for q in QUERIES[: args.cli_runs]:
            began = time.perf_counter()
            subprocess.run(
                [RAG, "search", q, "--index", args.index, "-k", "5"],
                check=True,
                capture_output=True,
            )
            cli.append((time.perf_counter() - began) * 1000)
        print(f"index {args.index}; {args.queries} requests per row; ms")
        print(f"{'path':<36} {'p50':>8} {'p95':>8}")
        print(f"{'POST /search, sequential':<36} {percentiles(sequential)}")
        print(
            f"{'POST /search, 8 concurrent clients':<36} {percentiles(concurrent)}"
            f"   ({args.queries / wall:.1f} requests/s)"
        )
        print(f"{'rag search (one process per query)':<36} {percentiles(cli)}")
        print(f"CLI / API p50 ratio: {statistics.median(cli) / statistics.median(sequential):.0f}x")
        if args.screenshot:
            screenshot(url, args.screenshot, QUERIES[0])
            print(f"screenshot: {args.screenshot}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
