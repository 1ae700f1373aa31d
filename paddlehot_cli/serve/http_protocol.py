"""paddlehot's HTTP/1.1 connection protocol (httptools), which uvicorn runs instead of its own.

For a tiny model the HTTP path is the whole cost of a request. uvicorn's protocol builds an ASGI
scope, a RequestResponseCycle, an asyncio.Event and a Task per request, re-arms a keep-alive
timer per response and writes a response's head and body with two send() calls: several times
the Python of a bare httptools protocol (issue 17). Here an
infer request (POST /v2/models/{m}[/versions/{v}]/infer) goes from the parser's callbacks
straight to REST's infer adapter (rest_infer.py), and its reply is written with one send(). Every other request is
handed to the ASGI app (Starlette) as uvicorn would. uvicorn still owns the listening socket, the
signals and the graceful drain: it calls shutdown() on each connection and waits until every
connection is closed.

Requests on one connection are answered in order, one at a time (pipelined ones wait parsed).
Every request body is limited to --max-body-mb (413, then the connection closes); a request's
line and headers to 64 KiB counted as sent, separators and padding included, and 100 header
lines (431), and to 10 s to arrive (a slow client is disconnected). Only HTTP/1.0 and 1.1 are
spoken: CONNECT, Upgrade (h2c, websocket), other versions and an HTTP/1.1 request without
exactly one Host are answered 400 and the connection is closed.

Every path ends in a reply or a close: a request that fails anywhere after it was parsed is
answered (400 for a target we cannot parse, 500 for our own failure), and a connection that
cannot be parsed any further is closed once what came before it is answered. A refusal known
from the head alone (413 for a declared length over the limit, 400, 431) is answered at once,
then the connection lingers briefly, discarding what the client still sends, so that the client
reads the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import http
import logging
from collections import deque
from typing import Any
from urllib.parse import unquote

import httptools

from paddlehot_cli.serve import checks
from paddlehot_cli.serve.fast_infer import infer_target
from paddlehot_cli.serve.refusals import Rejected, internal
from paddlehot_cli.serve.rest_edge import JSON, reply_of
from paddlehot_cli.serve.rest_infer import RestInfer

log = logging.getLogger("paddlehot.serve")
_MAX_PIPELINED = 8  # parsed requests waiting on one connection before we stop reading it
_MAX_HEAD = 64 * 1024  # request line + headers; more is refused (431) and the connection closed
_MAX_HEADERS = 100  # header lines per request (Apache's LimitRequestFields default)
_LINE_OVERHEAD = 16  # a request line's method, spaces and " HTTP/1.1\r\n" beside its target
_JOIN_ON_LOOP = 1 << 20  # bodies up to this are joined on the event loop (microseconds)
_LINGER_S = 2.0  # after an early refusal: how long the rest of the request is read and dropped
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_STATUS = {int(s): f"HTTP/1.1 {int(s)} {s.phrase}\r\n".encode() for s in http.HTTPStatus}
_ONE_WRITE = 1 << 16  # below this a reply is joined into one buffer; above, a vectored write


_OK_JSON = _STATUS[200] + b"content-type: application/json\r\n"
_ROUTES: dict[bytes, tuple[str, str | None]] = {}  # infer path -> (model, selector), checked


def _route(raw_path: bytes) -> tuple[str, str | None] | None:
    """(model, selector) when `raw_path` is an infer path, else None. Clients repeat a few
    paths, so the name checks run once per path (a bounded cache). Raises Rejected for a bad
    model name or selector."""
    found = _ROUTES.get(raw_path)
    if found is None:
        target = infer_target(raw_path) if raw_path.startswith(b"/v2/models/") else None
        if target is None:
            return None
        found = (checks.model_name(target[0]),
                 None if target[1] is None else checks.selector(target[1]))
        if len(_ROUTES) >= 4096:
            _ROUTES.clear()
        _ROUTES[raw_path] = found
    return found


def _head(status: int, media: str, length: int, extra: list, keep: bool) -> bytes:
    """A reply's status line and headers (every reply we write ourselves has a length)."""
    head = [_OK_JSON if status == 200 and media == JSON else
            _status_line(status) + b"content-type: " + media.encode("latin-1") + b"\r\n",
            b"content-length: ", str(length).encode(), b"\r\n"]
    for key, value in extra:
        head += [key, b": ", value, b"\r\n"]
    head.append(b"\r\n" if keep else b"connection: close\r\n\r\n")
    return b"".join(head)


def _status_line(status: int) -> bytes:
    return _STATUS.get(status) or f"HTTP/1.1 {status} \r\n".encode()


class _Request:
    __slots__ = ("body", "headers", "held", "keep_alive", "method", "refusal", "url", "version")

    def __init__(self, method: bytes, url: bytes, headers: list, body: bytes | list[bytes],
                 keep_alive: bool, version: str, refusal: Rejected | None, held: int):
        self.method, self.url, self.headers, self.body = method, url, headers, body
        self.keep_alive, self.version, self.refusal = keep_alive, version, refusal
        self.held = held  # body bytes counted against ClientLimits until the reply is written

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:  # the first one counts
            if key == name:
                return value.decode("latin-1")
        return None


class HttpProtocol(asyncio.Protocol):
    """One client connection. uvicorn creates it (config, server_state, app_state, _loop);
    runtime.py binds `infer` (REST's infer adapter) with functools.partial."""

    def __init__(self, config: Any, server_state: Any, app_state: dict, _loop: Any = None, *,
                 infer: RestInfer):
        self.infer = infer
        self.app = config.loaded_app  # everything but infer: the ASGI app
        self.state = server_state
        self.loop = _loop or asyncio.get_event_loop()
        self.keep_alive_s = float(config.timeout_keep_alive)
        self.limit = infer.limit
        self.limits = infer.limits  # server-wide: connections, body bytes held
        self.client: str | None = None  # the source address, once counted against the limits
        self.held = 0  # body bytes of the request being parsed, counted against the limits
        self.body_deadline = 0.0  # when the body being received must be complete
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.sockname: Any = None
        self.peername: Any = None
        self.waiting: deque[_Request] = deque()  # pipelined, parsed, not yet answered
        self.current: _Request | None = None  # being answered
        self.asgi_cycle: _Cycle | None = None
        self.closing = False  # close once the current response is written
        self.lost = False
        self.write_paused = False
        self.read_paused = False
        self.last_active = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None
        # the request being parsed
        self.in_message = False
        self.head_done = False
        self.head_size = 0
        self.head_started = 0.0
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        # the body being received, as the chunks it came in (joined once it is complete: on
        # the loop when small, on a body thread when large; growing one buffer in place cost
        # the loop ~0.5 s per 64 MB in reallocations)
        self.body: list[bytes] = []
        self.size = 0
        self.refusal: Rejected | None = None
        self.header_count = 0
        self.raw_head = 0  # bytes of the current head as received (the parser hides padding)
        self.head_tail = b""  # the last bytes of a head split across reads, to find its end
        self.discarding = False  # answered early: drop the rest until the connection closes

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.state.connections.add(self)
        self.sockname = _addr(transport.get_extra_info("sockname"))
        self.peername = _addr(transport.get_extra_info("peername"))
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        self.last_active = self.loop.time()
        self.idle_timer = self.loop.call_later(self.keep_alive_s, self._idle_check)
        client = self.peername[0] if self.peername else "?"
        refusal = self.limits.connect(client)
        if refusal is not None:  # told, not dropped: a 503 the client can read, then close
            self._refuse_early(Rejected(503, refusal, reason="connections",
                                        headers={"Retry-After": "1"}))
            return
        self.client = client

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.state.connections.discard(self)
        for req in [self.current, *self.waiting]:
            if req is not None:
                self.limits.drop(req.held, self.client)
                req.held = 0
        self.limits.drop(self.held, self.client)
        self.held = 0
        if self.client is not None:
            self.limits.disconnect(self.client)
            self.client = None
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self.asgi_cycle is not None:
            self.asgi_cycle.disconnected()
        self.waiting.clear()
        self.parser = None  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return
        if not (self.in_message and self.head_done) and self._raw_head_bytes(data) > _MAX_HEAD:
            self._bad_request(431, f"request line and headers over {_MAX_HEAD} bytes")
            return
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if not self.discarding:  # else answered from a head in this very read: drop the rest
                self._parse_failed(exc)

    def _parse_failed(self, exc: Exception) -> None:
        """The parser stopped: answer why, or answer what is pending first; then close."""
        if isinstance(exc, httptools.HttpParserUpgrade):
            # CONNECT or Upgrade: the request was refused (400); the parser would swallow the
            # rest of the stream as the new protocol's, so nothing more is read.
            self._stop_reading()
        elif self.head_size > _MAX_HEAD or self.header_count > _MAX_HEADERS:
            self._bad_request(431, f"request line and headers over {_MAX_HEAD} bytes or "
                                   f"{_MAX_HEADERS} lines")
        elif isinstance(exc, httptools.HttpParserCallbackError):  # one of ours failed
            log.error("internal error reading a request: %r", exc.__context__)
            self._bad_request(500, "internal error while reading the request")
        else:
            self._bad_request(400, "invalid HTTP request")

    def _raw_head_bytes(self, data: bytes) -> int:
        """Count this read's bytes up to the end of the request head it starts in."""
        seen = self.head_tail + data if self.head_tail else data
        end = seen.find(b"\r\n\r\n")
        if end >= 0:
            self.raw_head += end + 4 - len(self.head_tail)
            self.head_tail = b""
        else:
            self.raw_head += len(data)
            self.head_tail = seen[-3:]
        return self.raw_head

    def pause_writing(self) -> None:  # the client is not reading our replies: stop reading it
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()

    def shutdown(self) -> None:
        """uvicorn's graceful exit: close now if idle, else after the current response."""
        if self.current is None and not self.waiting:
            self.transport.close()
        else:
            self.closing = True

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.head_done = False
        self.head_size = 0
        self.head_started = self.loop.time()
        self.url = b""
        self.headers = []
        self.body = []
        self.size = 0
        self.refusal = None
        self.header_count = 0

    def on_url(self, url: bytes) -> None:
        if not self.url:
            self._head_bytes(_LINE_OVERHEAD)
        self._head_bytes(len(url))
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        self._head_bytes(len(name) + len(value) + 4)  # ": " and CRLF count too
        self.headers.append((name.lower(), value))

    def _head_bytes(self, n: int) -> None:
        self.head_size += n
        if self.head_size > _MAX_HEAD or self.header_count > _MAX_HEADERS:
            raise ValueError("request head too large")  # stops the parser: data_received: 431

    def on_headers_complete(self) -> None:
        self.head_done = True
        self.raw_head, self.head_tail = 0, b""
        self.body_deadline = self.loop.time() + self.limits.body_timeout_s
        self._check_by(self.body_deadline)
        self.refusal, expect = self._head_refusal()
        if self.refusal is not None and self.current is None and not self.waiting:
            self._refuse_early(self.refusal)
        elif expect and self.refusal is None and self.current is None and not self.waiting:
            self.transport.write(_CONTINUE)

    def _head_refusal(self) -> tuple[Rejected | None, bool]:
        """What the head alone says: a refusal (or None), and whether the client expects 100."""
        version = self.parser.get_http_version()
        if version not in ("1.0", "1.1"):
            return Rejected(400, f"HTTP/{version} is not supported: use HTTP/1.1"), False
        if self.parser.get_method() == b"CONNECT":
            return Rejected(400, "CONNECT is not supported: this is not a proxy"), False
        hosts, expect, refusal = 0, False, None
        for name, value in self.headers:
            if name == b"host":
                hosts += 1
            elif name == b"upgrade":
                return Rejected(400, "protocol upgrades (h2c, websocket) are not supported"), False
            elif name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False  # the parser rejects it
                if too_big:
                    refusal = Rejected(413, f"request body of {value.decode('latin-1')} "
                                              f"bytes is larger than the limit of {self.limit}")
            elif name == b"expect" and value.lower() == b"100-continue":
                expect = True
        if version == "1.1" and hosts != 1:
            return Rejected(400, "an HTTP/1.1 request needs exactly one Host header"), False
        return refusal, expect

    def on_body(self, chunk: bytes) -> None:
        if self.refusal is not None:
            return
        self.size += len(chunk)
        if self.size > self.limit:
            self._drop_body(Rejected(413, f"request body is larger than the limit of {self.limit} bytes"))
            return
        if not self.limits.hold(len(chunk), self.client):
            self._drop_body(Rejected(
                503, f"the server holds {self.limits.max_buffered_bytes >> 20} MB of request "
                     "bodies, its limit; retry later", reason="body_bytes",
                headers={"Retry-After": "1"}))
            return
        self.held += len(chunk)
        self.body.append(chunk)

    def _drop_body(self, refusal: Rejected, stop: bool = False) -> None:
        """Refuse the request being received and let go of its body bytes: answered at once
        when nothing is pending, else after what came before it (and with `stop`, its body is
        not awaited: the connection closes after the pending replies)."""
        self.refusal = refusal
        self.body = []
        self.limits.drop(self.held, self.client)
        self.held = 0
        if self.current is None and not self.waiting:
            self._refuse_early(refusal)
        elif stop:
            self._stop_reading()

    def on_message_complete(self) -> None:
        self.in_message = False
        if self.discarding:  # answered from its head already
            return
        parts, self.body = self.body, []
        # a large body stays in parts: the infer adapter joins it off the event loop
        body = parts[0] if len(parts) == 1 else (
            b"".join(parts) if self.size <= _JOIN_ON_LOOP else parts)
        req = _Request(self.parser.get_method(), self.url, self.headers, body,
                       self.parser.should_keep_alive(), self.parser.get_http_version(), self.refusal,
                       self.held)
        self.held = 0
        if self.current is not None or self.waiting:
            self.waiting.append(req)
            self._update_reading()
        else:
            self._dispatch(req)

    # -- answering -------------------------------------------------------------------------

    def _dispatch(self, req: _Request) -> None:
        """Answer `req` (now, or when its version is done). Never raises: whatever fails here
        is answered, so no request is left without a reply and its connection open."""
        self.current = req
        if req.refusal is not None:  # refused from its head (e.g. a body over the limit)
            req.keep_alive = False
            return self._reply_to(req, *self.infer.refusal(req.refusal))
        raw_path = req.url
        try:
            try:
                parsed = httptools.parse_url(req.url)
            except httptools.HttpParserError:
                parsed = None
            if parsed is None or parsed.path is None:  # e.g. "http://host" has no path
                req.keep_alive = False
                raise Rejected(400, "invalid request target")
            raw_path = parsed.path
            route = _route(raw_path) if req.method == b"POST" else None
            if route is None:
                self.asgi_cycle = _Cycle(self, req)
                task = self.loop.create_task(self.asgi_cycle.run(self.app, self._scope(req, parsed)))
                self.state.tasks.add(task)
                task.add_done_callback(self.state.tasks.discard)
                return None
            name, selector = route
            self.infer.call(name, selector, req.body, req.header(b"inference-header-content-length"),
                            lambda *reply: self._reply_to(req, *reply), self.loop,
                            req.header(b"content-encoding"))
        except Exception as exc:  # noqa: BLE001 - every failure is answered (500: logged)
            self._reply_to(req, *self.infer.refusal(exc))
        return None

    def _reply_to(self, req: _Request, status: int, payload: bytes, media: str, extra: list) -> None:
        if self.current is not req:  # answered already, or the connection is gone
            return
        keep = self._keep(req.keep_alive)
        self._write(_head(status, media, len(payload), extra, keep), payload)
        self._finished(keep)

    def _keep(self, wanted: bool) -> bool:
        """Whether the connection stays open after the current reply: when closing, only for
        the requests that were parsed before (pipelined) and still wait for their replies."""
        return wanted and not (self.closing and not self.waiting)

    def _write(self, head: bytes, payload: bytes = b"") -> None:
        if self.lost:
            return
        if len(payload) < _ONE_WRITE:
            self.transport.write(head + payload)  # one send() for head and body
        else:
            self.transport.writelines([head, payload])

    def _finished(self, keep: bool) -> None:
        """The current response is written: close, or go on with the next request."""
        if self.current is not None:
            self.limits.drop(self.current.held, self.client)
            self.current.held = 0
        self.current = None
        self.asgi_cycle = None
        self.state.total_requests += 1
        if self.lost:
            return
        if not keep or (self.closing and not self.waiting):
            self.transport.close()
            return
        self.last_active = self.loop.time()
        if self.waiting:
            nxt = self.waiting.popleft()
            self._update_reading()
            self._dispatch(nxt)

    def _scope(self, req: _Request, parsed: Any) -> dict:
        raw_path = parsed.path
        path = raw_path.decode("latin-1")
        return {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": req.version, "server": self.sockname, "client": self.peername,
            "scheme": self.scheme, "method": req.method.decode("latin-1"), "root_path": "",
            "path": unquote(path) if "%" in path else path, "raw_path": raw_path,
            "query_string": parsed.query or b"", "headers": req.headers, "state": {},
        }

    # -- connection upkeep -----------------------------------------------------------------

    def _update_reading(self) -> None:
        if self.lost:
            return
        pause = self.write_paused or len(self.waiting) >= _MAX_PIPELINED
        if pause != self.read_paused:
            self.read_paused = pause
            (self.transport.pause_reading if pause else self.transport.resume_reading)()

    def _check_by(self, when: float) -> None:
        """Make sure the connection's timer fires by `when` (a deadline just started)."""
        timer = self.idle_timer
        if timer is not None and timer.when() > when + 0.05:
            timer.cancel()
            self.idle_timer = self.loop.call_at(when + 0.05, self._idle_check)

    def _idle_check(self) -> None:
        """Close a keep-alive connection idle for --timeout-keep-alive (one timer per
        connection, re-armed, instead of one per response)."""
        if self.lost:
            return
        idle = self.current is None and not self.waiting and not self.in_message
        due = self.last_active + self.keep_alive_s
        now = self.loop.time()
        slow_head = (self.in_message and not self.head_done
                     and now - self.head_started > self.limits.head_timeout_s)
        if (idle and now >= due) or slow_head:
            self.transport.close()
            return
        if self.in_message and self.head_done and now > self.body_deadline:
            self._drop_body(Rejected(408, f"the request body did not arrive within "
                                          f"{self.limits.body_timeout_s:g} s"), stop=True)
            return
        self.idle_timer = self.loop.call_later(max(0.05, due - self.loop.time()) if idle
                                               else min(self.keep_alive_s, 1.0), self._idle_check)

    def _bad_request(self, status: int, message: str) -> None:
        """The stream cannot be parsed any further: answer it if nothing is pending, else answer
        what came before it; then close."""
        if self.current is not None or self.waiting:
            self._stop_reading()
            return
        self._refuse_early(Rejected(status, message))

    def _stop_reading(self) -> None:
        """Read nothing more; close once the pending replies are written."""
        self.closing = True
        self.discarding = True
        if self.current is None and not self.waiting and not self.lost:
            self.transport.close()

    def _refuse_early(self, refusal: Rejected) -> None:
        """Answer a request from its head alone, then linger: read and drop what the client is
        still sending for a moment, so it reads this reply instead of a connection reset."""
        if self.discarding or self.lost:  # answered and half-closed already
            return
        status, payload, media, extra = self.infer.refusal(refusal)
        self._write(_head(status, media, len(payload), extra, keep=False), payload)
        self.closing = self.discarding = True
        self.in_message = False
        if self.lost:
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_S, self.transport.close)


class _Cycle:
    """One request handed to the ASGI app: its receive() and send()."""

    def __init__(self, conn: HttpProtocol, req: _Request):
        self.conn = conn
        self.req = req
        self.body_sent = False  # receive() has handed the body over
        self.gone = asyncio.Event()
        self.status = 0
        self.headers: list = []
        self.started = False  # the head is written
        self.chunked = False
        self.done = False
        self.keep = req.keep_alive

    async def run(self, app: Any, scope: dict) -> None:
        try:
            await app(scope, self.receive, self.send)
        except BaseException as exc:  # noqa: BLE001 - as uvicorn: log, 500 if we still can
            if not isinstance(exc, Exception):
                self.conn.transport.close()
                raise
            log.exception("internal error on %s", scope["path"])
            if not self.status and not self.started:
                self.status, self.headers = 500, [(b"content-type", b"application/json")]
                await self.send({"type": "http.response.body", "body": reply_of(internal(exc))[1]})
        if not self.done and not self.conn.lost:  # the app did not finish its response
            if self.started:
                self.conn.transport.close()
                self.conn._finished(False)
            else:
                self.status, self.headers = 500, [(b"content-type", b"application/json")]
                await self.send({"type": "http.response.body", "body": b'{"error":"no response"}'})

    def disconnected(self) -> None:
        self.gone.set()

    async def receive(self) -> dict:
        if not self.body_sent:
            self.body_sent = True
            body = self.req.body
            return {"type": "http.request", "more_body": False,
                    "body": body if isinstance(body, bytes) else b"".join(body)}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        if self.done or self.conn.lost:
            return
        kind = message["type"]
        if kind == "http.response.start":
            self.status = int(message["status"])
            self.headers = list(message.get("headers", []))
            return
        if kind != "http.response.body":
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if self.req.method == b"HEAD":
            body = b""
        if not self.started:
            self.started = True
            names = set()
            for key, value in self.headers:
                key = key.lower()
                names.add(key)
                if key == b"connection" and value.lower() == b"close":
                    self.keep = False
            keep = self.conn._keep(self.keep)
            head = [_status_line(self.status)]
            head += [b"%s: %s\r\n" % (key, value) for key, value in self.headers]
            if b"content-length" not in names and self.req.method != b"HEAD":
                if more:
                    self.chunked = True
                    head.append(b"transfer-encoding: chunked\r\n")
                else:
                    head.append(b"content-length: %d\r\n" % len(body))
            if not keep and b"connection" not in names:
                head.append(b"connection: close\r\n")
            self.keep = keep
            head.append(b"\r\n")
            if self.chunked:
                self.conn._write(b"".join(head), b"%x\r\n%s\r\n" % (len(body), body) if body else b"")
            else:
                self.conn._write(b"".join(head), body)
        elif self.chunked:
            if body:
                self.conn._write(b"%x\r\n" % len(body), body + b"\r\n")
        else:
            self.conn._write(body)
        if not more:
            if self.chunked:
                self.conn._write(b"0\r\n\r\n")
            self.done = True
            self.gone.set()
            self.conn._finished(self.keep)


def _addr(info: Any) -> tuple[str, int] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None
