"""An OpenAI-compatible LLM server for tests and benchmarks, on 127.0.0.1.

It speaks real HTTP so every test goes through the real `openai` client. Replies are derived
from the request (the last user message), so a test can tell that each row got its own answer:
"Reply to: <message>", or in JSON mode an object shaped by the schema the request shows.

Its parts, one job each: tests/fake_replies.py (what the models answer), tests/fake_responses.py
(completions, errors, the markers' failures), tests/fake_request_log.py (the log and the requests
in flight), tests/fake_llm_app.py (routes and settings). This module runs the server, in a test's
thread (`FakeLLMServer`) or as a process of its own (`main`), and is where tests import it from.

Per-request markers, anywhere in the last user message:

    [[empty]]        200 with blank content            [[malformed]]    200 with a non-JSON body
    [[html]]         502 with an HTML error page       [[truncated]]    200 with cut-off JSON
    [[error:503]]    that HTTP status, OpenAI body     [[nochoices]]    200 with "choices": []
    [[flaky:2]]      500 for the first 2 attempts      [[slow:1.5]]     1.5 s extra latency
    [[quota]]        429 insufficient_quota            [[context]]      400 context_length_exceeded
    [[filtered]]     finish_reason content_filter      [[reset]]        connection dropped mid-reply
    [[overloaded]]   529 overloaded_error              [[prose]]        200 with plain text even in JSON mode
    [[pick:fake-alt=negative]]   that model answers "negative": every enum field (or, with no enum,
                                 every string field), or the whole text reply; [[pick:negative]]
                                 does it for every model. A list field (an array of enum items, or
                                 any array when no enum is given) gets the value split on ";":
                                 [[pick:price;quality]] answers ["price", "quality"]

Models disagree, deterministically, so Compare / Consensus / Pipeline tests see real differences.
A row's "odd third" is the rows whose user message has ``int(sha1(user)[:8], 16) % 3 == 0``
(``odd_third(user)``); ``disagrees(model, user)`` says whether a model departs from the baseline:

    most models      the baseline: enum value ``labels[len(user) % n]``, string field "<key> of
                     <message>", text "Reply to: <message>"; an array of enum items (multi-label)
                     gets that value, plus the next one ``labels[(len(user) + 1) % n]`` when the
                     message's length is even (and n > 1)
    *-alt* models    (e.g. fake-alt) the baseline, except on odd-third rows: the next enum value
                     ``labels[(len(user) + 1) % n]`` (an array's values shift the same way),
                     "<key> (alt) of <message>", "Alt reply to: ..."
    *contrarian*     (e.g. fake-contrarian) on every row: the next enum value, "<key> (contrary) of
                     <message>", "Contrary reply to: <message>" (a one-value enum cannot differ)

Numbers, booleans and lists in JSON replies are the same for every model.
``ServerConfig.answers`` (model -> text) overrides all of this: that model's reply content is
the text verbatim, in any mode (give JSON text to answer a JSON request).
A reply's ``model`` field echoes the model asked for, as most local servers do;
``ServerConfig.reported_models`` (model asked for -> id) makes it name another, dated id as OpenAI
does (``{"gpt-4o": "gpt-4o-2024-08-06"}``), or, mapped to None, leaves the field out.

Control endpoints (server-wide behaviour; ``FakeLLMServer.configure`` does the same from Python):

    POST /_config    a JSON object of settings to change, answered with all of them: latency_ms,
                     jitter_ms, error_rate, error_status, rpm, ratelimit_headers, valid_keys,
                     auth_style, models, strict_models, force_status, seed, answers,
                     reported_models, hold (true: replies wait, after their latency, until it
                     is false again, so a test can kill a client with calls in flight and none
                     answered in between)
    GET  /_log       every request answered so far: time, model, user message, status, masked
                     key, system (``FakeLLMServer.in_flight()`` counts those not yet answered)
    POST /_reset     clear the log, the flaky counters and the rate bucket; reseed the randomness

The Files and Batch endpoints (OpenAI's and Azure's Batch API) are mounted from tests/fake_batches.py.

Run it on its own: ``python -m tests.fake_llm_server --port 8765 --latency-ms 100`` (or
``python tests/fake_llm_server.py …``).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run by path (python tests/fake_llm_server.py): the repository root, so `tests` imports
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fake_llm_app import FakeLLM, ServerConfig
from tests.fake_replies import DEFAULT_MODELS, MARKER, PICK, disagrees, json_reply, odd_third, picked
from tests.fake_request_log import InFlight, LoggedRequest, masked
from tests.fake_responses import AUTH_BODIES

__all__ = [
    "AUTH_BODIES",
    "DEFAULT_MODELS",
    "MARKER",
    "PICK",
    "FakeLLM",
    "FakeLLMServer",
    "InFlight",
    "LoggedRequest",
    "ServerConfig",
    "disagrees",
    "json_reply",
    "masked",
    "odd_third",
    "picked",
]


class FakeLLMServer:
    """Runs FakeLLM on its own event loop thread, so tests can use it from synchronous code."""

    def __init__(self, config: ServerConfig | None = None, port: int = 0) -> None:
        self.llm = FakeLLM(config)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-llm")
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL as users type it for an OpenAI-compatible server (with /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.llm.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def configure(self, **changes: Any) -> None:
        for key, value in changes.items():
            if not hasattr(self.llm.config, key):
                raise AttributeError(f"ServerConfig has no field {key!r}")
            setattr(self.llm.config, key, value)
        if "seed" in changes:
            self.llm.reseed()

    def reset(self, **config: Any) -> None:
        """Clear the request log and counters and restore the default config plus `config`."""
        self.llm.config = ServerConfig(**config)
        self.llm.reset()

    def requests(self) -> list[LoggedRequest]:
        return list(self.llm.log)

    def in_flight(self, where: Callable[[InFlight], bool] | None = None) -> int:
        """Chat requests begun and not yet logged (a killed client's calls still on their way to
        the log); with `where`, only those it accepts (see InFlightRequests.count)."""
        return self.llm.in_flight.count(where)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_llm_server",
        description=doc.split("\n\n", 1)[0],
        epilog=doc[doc.index("Per-request markers") :],  # the module docstring's tables: one place
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: %(default)s)")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="milliseconds every reply waits (default: %(default)s)"
    )
    parser.add_argument(
        "--jitter-ms",
        type=float,
        default=0.0,
        help="random +/- milliseconds added to the latency (default: %(default)s)",
    )
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="fraction 0-1 of requests that fail with a 500 "
        "(the status is error_status in /_config; default: %(default)s)",
    )
    parser.add_argument(
        "--rpm", type=int, default=0, help="requests per minute before 429s with Retry-After (default: 0, no limit)"
    )
    parser.add_argument(
        "--ratelimit-headers", action="store_true", help="send x-ratelimit-* headers with --rpm, as OpenAI does"
    )
    parser.add_argument(
        "--valid-key",
        action="append",
        dest="valid_keys",
        metavar="KEY",
        help="accept only this API key (repeat for several); without it any key, or none, is accepted",
    )
    parser.add_argument(
        "--auth-style",
        default="openai",
        choices=sorted(AUTH_BODIES),
        help="whose error body a wrong key gets (default: %(default)s)",
    )
    args = parser.parse_args()
    config = ServerConfig(
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        error_rate=args.error_rate,
        rpm=args.rpm,
        ratelimit_headers=args.ratelimit_headers,
        valid_keys=args.valid_keys,
        auth_style=args.auth_style,
    )
    web.run_app(FakeLLM(config).app(), host="127.0.0.1", port=args.port, access_log=None, print=print)


if __name__ == "__main__":
    main()
