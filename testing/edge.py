"""Reader fronts for the test stack: what stands between Firefox and Remote Settings in production,
applied to the real Kinto behind it, so that a request production would refuse fails a test.

- `edge`: the reader CDN on `/v1`. It serves, to GET only: `/`, `/buckets`, `/buckets/{b}`,
  `/buckets/{b}/collections`, `/buckets/{b}/collections/{c}`, `.../records` and `.../changeset`.
  It answers 406 for any other endpoint and for monitor/changes records ("Decommissioned
  monitor/changes records"), 400 for a `/changeset` without a numeric `_expected`, 307 from a
  quoted `_expected` to the unquoted one, and refuses writes (405). Everything else goes to Kinto.
- `v2`: git-reader's `/v2`. It serves `/`, the changesets (monitor/changes and collections),
  `/__broadcasts__`, `/cert-chains/...` and `/attachments/...`; every other path is 404 and a
  `/changeset` without `_expected`, or with a quoted one, is 422.

(SPEC §1.1, from the service's own edge-rule tests.) Each refusal is logged with its reason in the
fixture's log file, next to the stack's other logs.
"""

import http.client
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ID = r"[^/]+"
COLLECTION = rf"/buckets/{ID}/collections/{ID}"
CHANGESET = re.compile(rf"{COLLECTION}/changeset")
EDGE_ENDPOINTS = [
    re.compile(p)
    for p in ("/", "/buckets", rf"/buckets/{ID}", rf"/buckets/{ID}/collections", COLLECTION,
              rf"{COLLECTION}/records", rf"{COLLECTION}/changeset")
]
MONITOR_RECORDS = "/buckets/monitor/collections/changes/records"
# Response headers that belong to one connection, not to the answer relayed.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class Refusal(Exception):
    def __init__(self, status, message, location=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.location = location


def _expected(query):
    """The `_expected` values of a query string (parsed, quotes kept)."""
    return urllib.parse.parse_qs(query, keep_blank_values=True).get("_expected", [])


def _unquoted_query(query):
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    return urllib.parse.urlencode(
        [(k, v.replace('"', "") if k == "_expected" else v) for k, v in pairs]
    )


def edge_route(path, query):
    """Where the CDN sends a GET: the upstream path, or a Refusal."""
    if path != "/v1" and not path.startswith("/v1/"):
        raise Refusal(406, "Endpoint not served by the CDN")
    endpoint = path[len("/v1"):].rstrip("/") or "/"
    if endpoint == MONITOR_RECORDS:
        raise Refusal(406, "Decommissioned monitor/changes records")
    if not any(p.fullmatch(endpoint) for p in EDGE_ENDPOINTS):
        raise Refusal(406, "Endpoint not served by the CDN")
    if CHANGESET.fullmatch(endpoint):
        values = _expected(query)
        if len(values) == 1 and '"' in values[0]:
            raise Refusal(307, "Quoted _expected", location=f"{path}?{_unquoted_query(query)}")
        if len(values) != 1 or not values[0].isdigit():
            raise Refusal(400, "_expected must be a number")
    return ("kinto", path)


def v2_route(path, query):
    """Where `/v2` sends a GET: (upstream, path), or a Refusal."""
    if path != "/v2" and not path.startswith("/v2/"):
        raise Refusal(404, "Not found")
    rest = path[len("/v2"):]
    if rest in ("", "/"):
        return ("kinto", "/v1/")
    if rest == "/__broadcasts__":
        return ("kinto", "/v1/__broadcasts__")
    if rest.startswith("/cert-chains/"):
        return ("chains", "/chains/" + rest[len("/cert-chains/"):])
    if rest.startswith("/attachments/"):
        return ("attachments", "/" + rest[len("/attachments/"):])
    if CHANGESET.fullmatch(rest):
        values = _expected(query)
        if len(values) != 1 or '"' in values[0]:
            raise Refusal(422, "_expected is required, unquoted")
        return ("kinto", "/v1" + rest)
    raise Refusal(404, "Not found")


ROUTES = {"edge": edge_route, "v2": v2_route}


def make_relay(route, upstreams, logfile, rewrite=None):
    """A request handler class relaying each GET where `route(path, query)` sends it (an upstream
    of `upstreams`, name -> base URL, and a path) or refusing it; `rewrite(path, body)`, when
    given, returns the body relayed for an answer of the upstream."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            with lock, open(logfile, "a") as f:
                f.write(f"{self.log_date_time_string()} {fmt % args}\n")

        def _answer(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        def _refuse(self, refusal):
            self.log_message("REFUSED %s %s: %d %s", self.command, self.path, refusal.status,
                             refusal.message)
            headers = [("Content-Type", "application/json")]
            if refusal.location:
                headers.append(("Location", refusal.location))
            body = ('{"code": %d, "message": "%s"}' % (refusal.status, refusal.message)).encode()
            self._answer(refusal.status, body, headers)

        def do_GET(self):
            parts = urllib.parse.urlsplit(self.path)
            try:
                upstream, path = route(parts.path, parts.query)
            except Refusal as refusal:
                return self._refuse(refusal)
            base = urllib.parse.urlsplit(upstreams[upstream])
            target = base.path.rstrip("/") + path + (f"?{parts.query}" if parts.query else "")
            # A GET's body, if any, is read and not relayed.
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "content-length", "transfer-encoding")}
                conn.request(self.command, target, headers=headers)
                response = conn.getresponse()
                body = response.read()
                if rewrite is not None:
                    body = rewrite(parts.path, body)
                relayed = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                self._answer(response.status, body, relayed)
            except OSError as e:
                self._answer(502, f'{{"message": "upstream {upstream}: {e}"}}'.encode())
            finally:
                conn.close()

        do_HEAD = do_GET

        def _write(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self._refuse(Refusal(405, "Writes are refused"))

        do_POST = do_PUT = do_PATCH = do_DELETE = _write

    return Handler


def start_relay(handler):
    """Serve `handler` (from make_relay) on a free loopback port in a daemon thread; returns the
    server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_front(kind, upstreams, logfile):
    """Serve the `kind` front (`edge` or `v2`) relaying to `upstreams`; returns the server."""
    return start_relay(make_relay(ROUTES[kind], upstreams, logfile))
