#!/usr/bin/env python3
"""The real Remote Settings test stack, on loopback, for the project's tests, demo and benchmarks.

It runs, on free ports, Remote Settings as the service runs today (`--server today`, the default:
Kinto 26 with kinto-remote-settings, the history plugin and kinto-attachment) or as it ran in 2020
(`--server 2020`: Kinto 14.8 with kinto-signer and kinto-changes, the compatibility leg; run it with
the Python of .venv-2020):
- an Autograph-shaped signing service (in this process): `POST /sign/data` signs with ECDSA P-384
  like Autograph's content-signature signer, and `GET /chains/<name>.pem` serves x5u chains from a
  PKI generated for this run (RSA root, P-384 intermediate with a name constraint, P-384 leaves);
- three Kinto servers with the signer and changes plugins (memory backends): "main",
  "small pages" (`kinto.paginate_by = 3`) and "bulk" (for tests and benchmarks that write thousands
  of records: its own process, so they neither wait for nor slow down the others, and permissions
  looked up through an index, see kinto_indexed_permission.py), all signing through that service;
- a fourth Kinto, "reader", with the changes plugin only: a server without `capabilities.signer`,
  like a Remote Settings reader node;
- a static file server for kinto-attachment's files (one folder per Kinto), as production serves
  them: `capabilities.attachments.base_url` points at it;
- production's reader fronts before the main Kinto (edge.py, in this process): the CDN's edge rules
  on /v1 (RSL_TEST_EDGE_SERVER) and a /v2-shaped front (RSL_TEST_V2_SERVER);
- an S3-compatible server (moto) for blockpages_generator, and (today's flavour) the GCS emulator
  (gcp-storage-emulator) for the jobs' object store.

Negative signing cases are chosen by the data itself, so tests running in parallel never disturb
each other: a record holding `"rsl-autograph": "<mode>"` makes every signature of its collection use
that mode (see MODES below): another key, a short signature, or an x5u chain that is expired, not yet
valid, for another name, broken, and so on.

Usage:
  stack.py run -- CMD ARGS...    start the stack, run CMD with RSL_TEST_* in its environment, stop
  stack.py demo -- CMD ARGS...   the same, after publishing a few signed demo collections
  stack.py serve                 start the stack, print its environment, wait for Ctrl-C

If anything fails to start, it says what and exits 1: tests never run without the stack.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import edge
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV_BIN = os.path.dirname(sys.executable)

USERS = {
    "editor": "editor-pass",
    "reviewer": "reviewer-pass",
    "admin": "admin-pass",
    "nobody": "nobody-pass",
}
HMAC_SECRET = "rsl-test-userid-secret"
HAWK_SECRET = "rsl-test-hawk-secret-0123456789abcdef"
SIGNER_NAMES = {
    "remote-settings": "remote-settings.content-signature.mozilla.org",
    "onecrl": "onecrl.content-signature.mozilla.org",
}

# Signing modes selected by a record's "rsl-autograph" field: (x5u chain name, signing behaviour).
MODES = {
    "wrong-key": ("good", "other-key"),
    "short-signature": ("good", "short"),
    "expired": ("expired", "leaf"),
    "not-yet-valid": ("not-yet-valid", "leaf"),
    "near-expiry": ("near-expiry", "leaf"),
    "wrong-san": ("wrong-san", "leaf"),
    "broken-link": ("broken-link", "leaf"),
    "non-ca-intermediate": ("non-ca-intermediate", "leaf"),
    "foreign-root": ("foreign-root", "leaf"),
    "no-code-signing": ("no-code-signing", "leaf"),
    "name-constraints": ("name-constraints", "leaf"),
    "many-certs": ("many-certs", "leaf"),
    "x5u-404": ("missing", "leaf"),
    "x5u-garbage": ("garbage", "leaf"),
    "x5u-huge": ("huge", "leaf"),
    "x5u-slow": ("slow", "leaf"),
    "x5u-redirect": ("redirect", "leaf"),
}
MARKER = re.compile(rb'"rsl-autograph":"([a-z0-9-]+)"')


def log(message):
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def userid(user):
    import hmac as _hmac

    digest = _hmac.new(
        HMAC_SECRET.encode(), f"{user}:{USERS[user]}".encode(), hashlib.sha256
    ).hexdigest()
    return f"basicauth:{digest}"


# Ports handed out by this process, so no two of its servers are given the same one.
_HANDED_OUT = set()


def free_port():
    """A port no one listens on, for a server this process starts.

    It is drawn below the kernel's ephemeral range: a port the kernel handed out with `bind(0)`
    can be taken, between this check and the server's own bind, as the source port of any
    outgoing connection on the machine (CI saw a Kinto fail with "Address already in use")."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    low = min(20000, ephemeral_low - 2000)
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(low, ephemeral_low)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port in {low}..{ephemeral_low}")


# --- The per-run PKI -----------------------------------------------------------------------------


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer, public_key, signing_key, algorithm, not_before, not_after, extensions):
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(signing_key, algorithm)


def _ca_extensions(ca=True, permitted=None, path_length=0):
    exts = [
        (x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), True),
        (
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False),
    ]
    if permitted:
        exts.append(
            (
                x509.NameConstraints(
                    permitted_subtrees=[x509.DNSName(p) for p in permitted],
                    excluded_subtrees=None,
                ),
                True,
            )
        )
    return exts


def _leaf_extensions(san, eku=ExtendedKeyUsageOID.CODE_SIGNING):
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
        (x509.ExtendedKeyUsage([eku]), False),
        (x509.SubjectAlternativeName([x509.DNSName(san)]), False),
    ]


def pem(*certs):
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


class Pki:
    """A root (RSA, like Mozilla's), an intermediate (P-384, name-constrained) and one P-384 leaf per
    signer, plus the broken chains the negative tests need."""

    def __init__(self):
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        day = datetime.timedelta(days=1)
        self.root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root = _cert(
            "rsl test root", "rsl test root", self.root_key.public_key(), self.root_key,
            hashes.SHA384(), now - 400 * day, now + 3650 * day, _ca_extensions(path_length=None),
        )
        self.root = root
        self.root_hash = ":".join(
            f"{b:02X}" for b in hashlib.sha256(root.public_bytes(serialization.Encoding.DER)).digest()
        )
        self.inter_key = ec.generate_private_key(ec.SECP384R1())
        constraint = ["content-signature.mozilla.org"]

        def inter_cert(ca=True, permitted=constraint):
            return _cert(
                "rsl test content signing intermediate", "rsl test root",
                self.inter_key.public_key(), self.root_key, hashes.SHA256(),
                now - 300 * day, now + 1825 * day, _ca_extensions(ca=ca, permitted=permitted),
            )

        inter = inter_cert()
        self.leaf_keys = {name: ec.generate_private_key(ec.SECP384R1()) for name in SIGNER_NAMES}
        self.other_key = ec.generate_private_key(ec.SECP384R1())

        def leaf(signer, san=None, nb=now - 30 * day, na=now + 300 * day, key=None,
                 issuer_key=None, eku=ExtendedKeyUsageOID.CODE_SIGNING):
            san = san or SIGNER_NAMES[signer]
            return _cert(
                san, "rsl test content signing intermediate",
                (key or self.leaf_keys[signer]).public_key(), issuer_key or self.inter_key,
                hashes.SHA384(), nb, na, _leaf_extensions(san, eku),
            )

        # Chains by name, for the remote-settings signer; "<name>@onecrl" for the onecrl one.
        self.chains = {}
        for signer in SIGNER_NAMES:
            suffix = "" if signer == "remote-settings" else "@" + signer
            self.chains["good" + suffix] = pem(leaf(signer), inter, root)
        rs = "remote-settings"
        self.chains["expired"] = pem(leaf(rs, nb=now - 400 * day, na=now - 2 * day), inter, root)
        self.chains["not-yet-valid"] = pem(leaf(rs, nb=now + 5 * day, na=now + 300 * day), inter, root)
        self.chains["near-expiry"] = pem(leaf(rs, nb=now - 100 * day, na=now + 3 * day), inter, root)
        self.chains["wrong-san"] = pem(
            leaf(rs, san="other.content-signature.mozilla.org"), inter, root
        )
        self.chains["broken-link"] = pem(
            leaf(rs, issuer_key=ec.generate_private_key(ec.SECP384R1())), inter, root
        )
        self.chains["non-ca-intermediate"] = pem(leaf(rs), inter_cert(ca=False), root)
        self.chains["name-constraints"] = pem(
            leaf(rs), inter_cert(permitted=["example.com"]), root
        )
        self.chains["no-code-signing"] = pem(
            leaf(rs, eku=ExtendedKeyUsageOID.SERVER_AUTH), inter, root
        )
        self.chains["many-certs"] = pem(leaf(rs), *([inter] * 48), root)
        # Another PKI altogether, issuing a leaf for the same key: only a root pin tells.
        foreign_root_key = ec.generate_private_key(ec.SECP384R1())
        foreign_root = _cert(
            "rsl foreign root", "rsl foreign root", foreign_root_key.public_key(),
            foreign_root_key, hashes.SHA384(), now - 400 * day, now + 3650 * day,
            _ca_extensions(path_length=None),
        )
        foreign_inter = _cert(
            "rsl test content signing intermediate", "rsl foreign root",
            self.inter_key.public_key(), foreign_root_key, hashes.SHA384(),
            now - 300 * day, now + 1825 * day, _ca_extensions(permitted=constraint),
        )
        self.chains["foreign-root"] = pem(leaf(rs), foreign_inter, foreign_root)
        self.chains["garbage"] = b"this is not a PEM certificate chain\n"
        self.chains["huge"] = b"-----BEGIN CERTIFICATE-----\n" + b"A" * (3 * 1024 * 1024)

    def write_root(self, path):
        with open(path, "wb") as f:
            f.write(pem(self.root))


# --- The Autograph-shaped service ----------------------------------------------------------------


def make_autograph(pki, port_holder, logfile):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            with lock, open(logfile, "a") as f:
                f.write(f"{self.log_date_time_string()} {fmt % args}\n")

        def _send(self, status, body, content_type="application/json", headers=()):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (a test's timeout, a size cap): that is the test's business.
                self.log_message("%s", "the client closed the connection before the answer was sent")

        def do_GET(self):
            m = re.fullmatch(r"/chains/([A-Za-z0-9@._-]+)\.pem", self.path)
            name = m.group(1) if m else None
            if name == "slow":
                time.sleep(10)
                self._send(200, pki.chains["good"], "application/x-pem-file")
            elif name == "redirect":
                target = f"http://localhost:{port_holder[0]}/chains/good.pem"
                self._send(302, b"", headers=[("Location", target)])
            elif name in pki.chains:
                self._send(200, pki.chains[name], "application/x-pem-file")
            elif self.path == "/__heartbeat__":
                self._send(200, b"{}")
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            auth = self.headers.get("Authorization", "")
            hawk_id = re.search(r'id="([^"]+)"', auth)
            if not auth.startswith("Hawk ") or not hawk_id or hawk_id.group(1) not in SIGNER_NAMES:
                return self._send(401, b'{"error": "hawk authentication required"}')
            if self.path != "/sign/data":
                return self._send(404, b'{"error": "not found"}')
            signer = hawk_id.group(1)
            try:
                inputs = json.loads(body)
                answers = [self.sign(signer, base64.b64decode(item["input"])) for item in inputs]
            except (ValueError, KeyError, TypeError) as e:
                return self._send(400, json.dumps({"error": str(e)}).encode())
            self._send(201, json.dumps(answers).encode())

        def sign(self, signer, data):
            marker = MARKER.search(data)
            chain, behaviour = MODES.get(marker.group(1).decode(), ("good", "leaf")) if marker else ("good", "leaf")
            if chain == "good" and signer != "remote-settings":
                chain = "good@" + signer
            key = pki.other_key if behaviour == "other-key" else pki.leaf_keys[signer]
            der = key.sign(b"Content-Signature:\x00" + data, ec.ECDSA(hashes.SHA384()))
            r, s = decode_dss_signature(der)
            raw = r.to_bytes(48, "big") + s.to_bytes(48, "big")
            if behaviour == "short":
                raw = raw[:95]
            public_key = pki.leaf_keys[signer].public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return {
                "ref": hashlib.sha1(raw).hexdigest()[:12],
                "type": "contentsignature",
                "mode": "p384ecdsa",
                "signer_id": f"{signer}-test",
                "public_key": base64.b64encode(public_key).decode(),
                "signature": base64.urlsafe_b64encode(raw).decode().rstrip("="),
                "x5u": f"http://127.0.0.1:{port_holder[0]}/chains/{chain}.pem",
            }

    return Handler


# --- Kinto ---------------------------------------------------------------------------------------

KINTO_INI = """\
[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.memory
kinto.storage_url =
kinto.cache_backend = kinto.core.cache.memory
kinto.cache_url =
kinto.permission_backend = kinto.core.permission.memory
kinto.permission_url =
kinto.userid_hmac_secret = {hmac_secret}
multiauth.policies = basicauth
kinto.bucket_create_principals = system.Authenticated
kinto.bucket_write_principals = {admin}
kinto.paginate_by = {paginate_by}
kinto.batch_max_requests = 25
kinto.includes = {includes}
kinto.changes.resources =
    /buckets/main
    /buckets/main-preview
    /buckets/blocklists
    /buckets/security-state
    /buckets/security-state-preview
    /buckets/pinning
    /buckets/restricted
kinto.signer.resources =
    /buckets/main-workspace -> /buckets/main-preview -> /buckets/main
    /buckets/staging -> /buckets/blocklists
    /buckets/security-state-staging -> /buckets/security-state-preview -> /buckets/security-state
    /buckets/pinning-workspace/collections/pins -> /buckets/pinning/collections/pins-v2
    /buckets/restricted-workspace -> /buckets/restricted
kinto.signer.signer_backend = {signer_backend}
kinto.signer.autograph.server_url = {autograph}
kinto.signer.autograph.hawk_id = remote-settings
kinto.signer.autograph.hawk_secret = {hawk_secret}
kinto.signer.security-state-staging.autograph.hawk_id = onecrl
kinto.signer.to_review_enabled = true
kinto.signer.staging.to_review_enabled = false
kinto.signer.restricted-workspace.to_review_enabled = false
kinto.signer.pinning-workspace.pins.to_review_enabled = false
{server_settings}
[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = {port}
threads = 8

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)s [%(name)s] %(message)s
"""

# The two servers the stack can run. "today" is Remote Settings as it runs in 2026 (Kinto 26 with
# kinto-remote-settings, the history plugin and kinto-attachment, review groups enforced): the main
# stack. "2020" is Kinto 14.8 with kinto-signer 8.1.1 and kinto-changes 4.1.2, the compatibility leg
# (its own virtualenv, testing/requirements-2020.txt). Each names its plugins for a signing server
# and for a reader node (no signer), its Autograph backend, and settings of its own.
FLAVOURS = {
    "today": {
        # kinto_serial_signer_config: see its file (a thread race of the plugin under waitress).
        "includes": "kinto_serial_signer_config kinto.plugins.history kinto_attachment "
                    "kinto_remote_settings",
        "reader_includes": "kinto.plugins.history kinto_attachment kinto_remote_settings.changes",
        "signer_backend": "kinto_remote_settings.signer.backends.autograph",
        # As production: records keep a relative `location`, the files are served by a static
        # file server whose root URL the capabilities announce.
        "server_settings": """\
kinto.signer.security-state-staging.autograph.key_ids = onecrl
kinto.attachment.base_path = {attachments_dir}
kinto.attachment.base_url =
kinto.attachment.extra.base_url = {attachments_url}
kinto.attachment.folder = {{bucket_id}}/{{collection_id}}
kinto.attachment.extensions = any
""",
    },
    "2020": {
        "includes": "kinto_changes kinto_signer",
        "reader_includes": "kinto_changes",
        "signer_backend": "kinto_signer.signer.autograph",
        "server_settings": "kinto.signer.group_check_enabled = false\n",
    },
}

# Workspace buckets: writable by editor and reviewer (restricted-workspace: by admin only).
WORKSPACES = ["main-workspace", "staging", "security-state-staging", "pinning-workspace"]
# Preview and destination buckets: created before kinto-signer creates them on a first signature
# (it then keeps their permissions), readable by everyone and writable by admin only, so that tests
# can create real inconsistencies by writing where only the signer should.
PUBLISHED = ["main-preview", "main", "blocklists", "security-state-preview", "security-state",
             "pinning", "restricted"]


def http(method, url, auth=None, body=None, timeout=10):
    req = urllib.request.Request(url, method=method)
    if auth:
        user = auth
        token = base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, data=data, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {url}: HTTP {e.code}: {e.read()[:500]!r}") from None


class Stack:
    def __init__(self, workdir, flavour="today", bulk_pg=None):
        """`bulk_pg`, for the benchmarks only (`bench.py --server pg`): run the "bulk" Kinto on
        PostgreSQL in a temporary cluster (pgcluster.py), served by granian with several worker
        processes, as production runs it: a dict with `workers` and `threads` (per worker). By
        default (None, what `make test` uses) every Kinto is one waitress process on memory
        backends."""
        self.workdir = workdir
        self.flavour = flavour
        self.bulk_pg = bulk_pg
        self.pg = None
        self.procs = []
        self.env = {}

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        started = time.monotonic()
        self.pki = Pki()
        self.pki.write_root(os.path.join(self.workdir, "root.pem"))
        port_holder = [0]
        self.autograph = ThreadingHTTPServer(
            ("127.0.0.1", 0),
            make_autograph(self.pki, port_holder, os.path.join(self.workdir, "autograph.log")),
        )
        self.autograph.daemon_threads = True
        port_holder[0] = self.autograph.server_address[1]
        threading.Thread(target=self.autograph.serve_forever, daemon=True).start()
        autograph_url = f"http://127.0.0.1:{port_holder[0]}"

        # kinto-attachment's files, one folder per server, served as production serves them: by
        # a static file server of their own, not by Kinto, over connections kept alive as the
        # CDN keeps them (testing/files_server.py).
        self.attachments_dir = os.path.join(self.workdir, "attachments")
        # A previous run's files belong to records its memory backends forgot (bench.py keeps
        # its workdir from one run to the next).
        shutil.rmtree(self.attachments_dir, ignore_errors=True)
        os.makedirs(self.attachments_dir)
        files_port = free_port()
        files_log = open(os.path.join(self.workdir, "attachments.log"), "wb")
        self.procs.append(("attachments", subprocess.Popen(
            [sys.executable, os.path.join(HERE, "files_server.py"), self.attachments_dir,
             str(files_port)],
            stdout=files_log, stderr=subprocess.STDOUT, start_new_session=True,
        ), files_log.name))
        self.attachments_url = f"http://127.0.0.1:{files_port}"

        servers = {}
        for name, paginate_by in [("main", 10000), ("small-pages", 3), ("bulk", 10000)]:
            if name == "bulk" and self.bulk_pg:
                servers[name] = self.start_kinto_pg(name, paginate_by, autograph_url)
                continue
            servers[name] = self.start_kinto(
                name, paginate_by, autograph_url, indexed_permissions=(name == "bulk")
            )
        reader = self.start_kinto("reader", 10000, autograph_url, signer=False)
        s3_port = free_port()
        moto_log = open(os.path.join(self.workdir, "moto.log"), "wb")
        self.procs.append(("moto", subprocess.Popen(
            [os.path.join(VENV_BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)],
            stdout=moto_log, stderr=subprocess.STDOUT, start_new_session=True,
        ), moto_log.name))
        gcs_port = self.start_gcs_emulator() if self.flavour == "today" else None
        for name, url in [*servers.items(), ("reader", reader)]:
            self.wait_ready(name, url + "/")
        self.wait_ready("attachments", self.attachments_url + "/")
        self.wait_ready("moto", f"http://127.0.0.1:{s3_port}/moto-api/")
        if gcs_port:
            self.wait_ready("gcs", f"http://127.0.0.1:{gcs_port}/storage/v1/b")
        for url in servers.values():
            self.setup_kinto(url)
        # The reader fronts of production, before the main server: the CDN's edge on /v1 and /v2.
        upstreams = {
            "kinto": servers["main"][: -len("/v1")],
            "chains": autograph_url,
            "attachments": f"{self.attachments_url}/main",
        }
        self.fronts = {
            kind: edge.start_front(kind, upstreams, os.path.join(self.workdir, f"{kind}.log"))
            for kind in ("edge", "v2")
        }
        edge_url = f"http://127.0.0.1:{self.fronts['edge'].server_address[1]}/v1"
        v2_url = f"http://127.0.0.1:{self.fronts['v2'].server_address[1]}/v2"
        self.env = {
            "RSL_TEST_SERVER": servers["main"],
            "RSL_TEST_SMALL_PAGES_SERVER": servers["small-pages"],
            "RSL_TEST_BULK_SERVER": servers["bulk"],
            # For benchmarks that account for the server's CPU time (/proc/<pid>/stat; with
            # several workers, the granian process whose children they are).
            "RSL_TEST_BULK_PID": str(next(p.pid for n, p, _ in self.procs if n == "kinto-bulk")),
            **({
                "RSL_TEST_BULK_PG_PID": str(self.pg.pid),
                "RSL_TEST_BULK_PG_URL": self.pg.url,
                "RSL_TEST_BULK_WORKERS": str(self.bulk_pg["workers"]),
            } if self.pg else {}),
            "RSL_TEST_READER_SERVER": reader,
            # The main server behind production's reader CDN rules, and behind a /v2 front.
            "RSL_TEST_EDGE_SERVER": edge_url,
            "RSL_TEST_V2_SERVER": v2_url,
            "RSL_TEST_AUTOGRAPH_URL": autograph_url,
            "RSL_TEST_ROOT_HASH": self.pki.root_hash,
            "RSL_TEST_ROOT_PEM": os.path.join(self.workdir, "root.pem"),
            "RSL_TEST_S3_ENDPOINT": f"http://127.0.0.1:{s3_port}",
            # The GCS emulator (JSON API; each test makes its own buckets) and a service account
            # key file of the run's own, for GOOGLE_APPLICATION_CREDENTIALS (the emulator takes
            # any bearer token; the binary signs its token with this key all the same).
            **({
                "RSL_TEST_GCS_ENDPOINT": f"http://127.0.0.1:{gcs_port}",
                "RSL_TEST_GCS_CREDENTIALS": self.write_service_account(),
            } if gcs_port else {}),
            "RSL_TEST_LOG_DIR": self.workdir,
            "RSL_TEST_STACK_FLAVOUR": self.flavour,
            "RSL_TEST_ATTACHMENTS_URL": self.attachments_url,
            # Where that server's files are on disk, one folder per Kinto (`main/`...), for tests
            # that tamper with them.
            "RSL_TEST_ATTACHMENTS_DIR": self.attachments_dir,
        }
        for user in USERS:
            self.env[f"RSL_TEST_{user.upper()}_AUTH"] = f"{user}:{USERS[user]}"
            self.env[f"RSL_TEST_{user.upper()}_ID"] = userid(user)
        log(f"ready in {time.monotonic() - started:.1f}s ({self.flavour} server): "
            f"Kinto {servers['main']}, "
            f"small pages {servers['small-pages']}, bulk {servers['bulk']}, reader {reader}, "
            f"edge {edge_url}, /v2 {v2_url}, "
            f"autograph {autograph_url}, S3 http://127.0.0.1:{s3_port}, GCS {gcs_port}; "
            f"logs in {self.workdir}")

    def start_gcs_emulator(self):
        """gcp-storage-emulator (PyPI), in memory: Google Cloud Storage's JSON API."""
        port = free_port()
        logfile = open(os.path.join(self.workdir, "gcs.log"), "wb")
        self.procs.append(("gcs", subprocess.Popen(
            [os.path.join(VENV_BIN, "gcp-storage-emulator"), "start",
             "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
            stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True,
        ), logfile.name))
        return port

    def write_service_account(self):
        """A service account key file as Google issues them, with a fresh RSA key."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path = os.path.join(self.workdir, "gcs-service-account.json")
        with open(path, "w") as f:
            json.dump({
                "type": "service_account",
                "project_id": "rsl-test",
                "private_key_id": hashlib.sha1(pem.encode()).hexdigest(),
                "private_key": pem,
                "client_email": "rsl-test@rsl-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }, f)
        return path

    def start_kinto(self, name, paginate_by, autograph_url, indexed_permissions=False, signer=True,
                    launch=True):
        port = free_port()
        ini = os.path.join(self.workdir, f"kinto-{name}.ini")
        flavour = FLAVOURS[self.flavour]
        attachments_dir = os.path.join(self.attachments_dir, name)
        os.makedirs(attachments_dir)
        config = KINTO_INI.format(
            hmac_secret=HMAC_SECRET, admin=userid("admin"), paginate_by=paginate_by,
            autograph=autograph_url, hawk_secret=HAWK_SECRET, port=port,
            includes=flavour["includes" if signer else "reader_includes"],
            signer_backend=flavour["signer_backend"],
            server_settings=flavour["server_settings"].format(
                attachments_dir=attachments_dir,
                attachments_url=f"{self.attachments_url}/{name}/",
            ),
        )
        # The stack's own Kinto includes and backends are in this directory.
        env = dict(os.environ, PYTHONPATH=HERE)
        if indexed_permissions:
            stock = "kinto.permission_backend = kinto.core.permission.memory"
            assert stock in config, "the Kinto settings no longer name the memory permission backend"
            config = config.replace(stock, "kinto.permission_backend = kinto_indexed_permission")
        with open(ini, "w") as f:
            f.write(config)
        if not launch:
            return f"http://127.0.0.1:{port}/v1"
        logfile = open(os.path.join(self.workdir, f"kinto-{name}.log"), "wb")
        proc = subprocess.Popen(
            [os.path.join(VENV_BIN, "pserve"), ini], stdout=logfile, stderr=subprocess.STDOUT,
            start_new_session=True, env=env,
        )
        self.procs.append((f"kinto-{name}", proc, logfile.name))
        return f"http://127.0.0.1:{port}/v1"

    def start_kinto_pg(self, name, paginate_by, autograph_url):
        """A Kinto on PostgreSQL (storage, permission and cache backends) in a temporary cluster,
        its schema made by `kinto migrate`, served by granian's WSGI interface with
        `bulk_pg["workers"]` processes of `bulk_pg["threads"]` threads. Its request summaries
        (Kinto's `request.summary` log, with each request's time `t` in ms) go to
        kinto-<name>-requests.log, one JSON line each."""
        import pgcluster

        self.pg = pgcluster.PgCluster(os.path.join(self.workdir, "pg"), log=log)
        try:
            self.pg.start(free_port())
        except (RuntimeError, OSError) as e:
            self.pg.stop()
            self.fail(f"PostgreSQL did not start: {e}", os.devnull)
        url = self.start_kinto(name, paginate_by, autograph_url, launch=False)
        ini = os.path.join(self.workdir, f"kinto-{name}.ini")
        with open(ini) as f:
            config = f.read()
        for backend in ("storage", "cache", "permission"):
            stock = f"kinto.{backend}_backend = kinto.core.{backend}.memory\nkinto.{backend}_url =\n"
            assert stock in config, f"the Kinto settings no longer name the memory {backend} backend"
            config = config.replace(stock, f"kinto.{backend}_backend = kinto.core.{backend}.postgresql\n"
                                           f"kinto.{backend}_url = {self.pg.url}\n")
        requests_log = os.path.join(self.workdir, f"kinto-{name}-requests.log")
        config = config.replace("[loggers]\nkeys = root\n", "[loggers]\nkeys = root, summary\n")
        config = config.replace("[handlers]\nkeys = console\n", "[handlers]\nkeys = console, summary\n")
        config = config.replace("[formatters]\nkeys = generic\n", "[formatters]\nkeys = generic, json\n")
        config += f"""
[logger_summary]
level = INFO
handlers = summary
qualname = request.summary
propagate = 0

[handler_summary]
class = FileHandler
args = ({requests_log!r}, "a")
level = INFO
formatter = json

[formatter_json]
class = kinto.core.JsonLogFormatter
"""
        with open(ini, "w") as f:
            f.write(config)
        env = dict(os.environ, PYTHONPATH=HERE, KINTO_INI=ini)
        migrate = subprocess.run([os.path.join(VENV_BIN, "kinto"), "migrate", "--ini", ini],
                                 env=env, capture_output=True, text=True)
        if migrate.returncode != 0:
            self.pg.stop()
            log(migrate.stdout[-2000:] + migrate.stderr[-3000:])
            self.fail(f"kinto migrate exited {migrate.returncode}", os.devnull)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        logfile = open(os.path.join(self.workdir, f"kinto-{name}.log"), "wb")
        proc = subprocess.Popen(
            [os.path.join(VENV_BIN, "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(self.bulk_pg["workers"]),
             "--blocking-threads", str(self.bulk_pg["threads"]), "--no-ws",
             "kinto_wsgi:application"],
            stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=HERE,
        )
        self.procs.append((f"kinto-{name}", proc, logfile.name))
        return url

    def wait_ready(self, name, url, timeout=60):
        deadline = time.monotonic() + timeout
        proc, logname = next((p, l) for n, p, l in self.procs if n in (name, f"kinto-{name}"))
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.fail(f"{name} exited with code {proc.returncode} while starting", logname)
            try:
                urllib.request.urlopen(url, timeout=2).read()
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        self.fail(f"{name} did not answer {url} within {timeout}s", logname)

    def fail(self, message, logname):
        log(f"FAILED: {message}; last lines of {logname}:")
        try:
            with open(logname, "rb") as f:
                sys.stderr.write(f.read().decode(errors="replace")[-4000:])
        except OSError:
            pass
        self.stop()
        sys.exit(1)

    def setup_kinto(self, server):
        info = http("GET", server + "/", auth="editor")
        if info.get("user", {}).get("id") != userid("editor"):
            self.fail(f"basic auth is not working on {server}: {info.get('user')}",
                      self.procs[0][2])
        writers = [userid("editor"), userid("reviewer")]
        for bid in WORKSPACES:
            http("PUT", f"{server}/buckets/{bid}", auth="editor",
                 body={"permissions": {"write": writers, "read": ["system.Everyone"]}})
        http("PUT", f"{server}/buckets/restricted-workspace", auth="admin", body={})
        for bid in PUBLISHED:
            http("PUT", f"{server}/buckets/{bid}", auth="admin",
                 body={"permissions": {"write": [userid("admin")], "read": ["system.Everyone"]}})

    def stop(self):
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs = []
        if getattr(self, "pg", None):
            self.pg.stop()
            self.pg = None
        for front in getattr(self, "fronts", {}).values():
            front.shutdown()
        self.fronts = {}
        if getattr(self, "autograph", None):
            self.autograph.shutdown()
            self.autograph = None

    def print_log_tails(self):
        for name, _, logname in self.procs:
            log(f"last lines of {logname}:")
            try:
                with open(logname, "rb") as f:
                    sys.stderr.write(f.read().decode(errors="replace")[-3000:] + "\n")
            except OSError:
                pass


def add_reviewer(server, bid, cid):
    """Put the reviewer in the reviewers group of a source collection, as an administrator of
    today's service does: kinto-remote-settings creates `{cid}-editors` (with the creator) and an
    empty `{cid}-reviewers` with the collection, and refuses a review from outside the latter. (The
    2020 server checks no groups: there it is a plain group.)"""
    method, path, body = reviewers_group(bid, cid)
    http(method, server + path, auth="editor", body=body)


def reviewers_group(bid, cid):
    """The request of `add_reviewer`: method, path under the server's root, body."""
    return "PUT", f"/buckets/{bid}/groups/{cid}-reviewers", {"data": {"members": [userid("reviewer")]}}


# --- Demo data -----------------------------------------------------------------------------------


def seed_demo(server):
    """A few published collections, as an operator would see on a small server."""
    records = {
        ("main-workspace", "search-config"): [
            {"id": f"engine-{i}", "name": n, "urls": {"search": f"https://{n}.example/?q="}}
            for i, n in enumerate(["alpha", "beta", "gamma", "delta"])
        ],
        ("main-workspace", "language-dictionaries"): [
            {"id": lang, "dictionaries": [f"{lang}@dictionaries.addons.mozilla.org"]}
            for lang in ["fr", "de", "ja", "uk"]
        ],
        ("staging", "addons"): [
            {"id": f"addon-{i}", "guid": f"bad-{i}@example.com", "blockID": f"i{i}",
             "details": {"name": f"Bad add-on {i}", "why": "Malware.", "created": "2024-05-13T10:00:00Z"},
             "severity": 3 if i % 2 else 1}
            for i in range(5)
        ],
        ("staging", "plugins"): [],
        ("security-state-staging", "intermediates"): [
            {"id": "int-1", "subject": "CN=Example Intermediate", "pubKeyHash": "abc="}
        ],
    }
    for (bid, cid), recs in records.items():
        http("PUT", f"{server}/buckets/{bid}/collections/{cid}", auth="editor", body={})
        for r in recs:
            http("PUT", f"{server}/buckets/{bid}/collections/{cid}/records/{r['id']}",
                 auth="editor", body={"data": r})
        if not recs:
            continue  # creating a source collection signs it already: nothing to review
        if bid == "staging":
            http("PATCH", f"{server}/buckets/{bid}/collections/{cid}", auth="editor",
                 body={"data": {"status": "to-sign"}})
        else:
            add_reviewer(server, bid, cid)
            http("PATCH", f"{server}/buckets/{bid}/collections/{cid}", auth="editor",
                 body={"data": {"status": "to-review"}})
            http("PATCH", f"{server}/buckets/{bid}/collections/{cid}", auth="reviewer",
                 body={"data": {"status": "to-sign"}})
    log(f"published {len(records)} demo collections (and their previews)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["run", "demo", "serve"])
    parser.add_argument("--workdir", default=os.path.join(ROOT, ".stack"))
    parser.add_argument(
        "--server", choices=sorted(FLAVOURS), default="today",
        help="today's Remote Settings (the main stack) or the 2020 one (the compatibility leg); "
             "run it with the Python of the virtualenv that holds that server",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.mode != "serve" and not command:
        parser.error("give the command to run after --")

    if os.path.isdir(args.workdir):
        shutil.rmtree(args.workdir)
    stack = Stack(args.workdir, args.server)

    def on_signal(signum, frame):
        stack.stop()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack.start()
    try:
        if args.mode == "demo":
            seed_demo(stack.env["RSL_TEST_SERVER"])
        if args.mode == "serve":
            for k, v in stack.env.items():
                print(f"export {k}={v}")
            sys.stdout.flush()
            log("serving; Ctrl-C stops")
            while True:
                time.sleep(3600)
        env = dict(os.environ, **stack.env)
        if args.mode == "demo":
            env.setdefault("SERVER", stack.env["RSL_TEST_SERVER"])
            env.setdefault("ROOT_HASH", stack.env["RSL_TEST_ROOT_HASH"])
        code = subprocess.call(command, env=env)
        if code != 0 and args.mode == "run":
            stack.print_log_tails()
        return code
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
