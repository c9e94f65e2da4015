#!/usr/bin/env python3
"""Write the certificate chains used by the unit tests of commands/src/signature/chain.rs into
tests/data/chains/ (committed; rerun only to change them: `.venv/bin/python testing/make_chain_fixtures.py`).

Same shape as the test stack's PKI (testing/stack.py): an RSA root, a P-384 intermediate
name-constrained to content-signature.mozilla.org, P-384 leaves; fixed dates, so tests pick their
check time: every certificate is valid from 2024-01-01 to 2034-01-01 unless its name says otherwise.
Also writes signature.json: a content signature by the good leaf over a known payload.
"""

import base64
import datetime
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stack import _ca_extensions, _cert, _leaf_extensions, pem  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data", "chains")
UTC = datetime.timezone.utc
NB = datetime.datetime(2024, 1, 1, tzinfo=UTC)
NA = datetime.datetime(2034, 1, 1, tzinfo=UTC)
RS = "remote-settings.content-signature.mozilla.org"
CONSTRAINT = ["content-signature.mozilla.org"]
PAYLOAD = b'Content-Signature:\x00{"data":[],"last_modified":"1700000000000"}'


def main():
    os.makedirs(OUT, exist_ok=True)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _cert("rsl fixture root", "rsl fixture root", root_key.public_key(), root_key,
                 hashes.SHA384(), NB, NA, _ca_extensions(path_length=None))
    inter_key = ec.generate_private_key(ec.SECP384R1())

    def inter(ca=True, permitted=CONSTRAINT, exts=None, path_length=0, issuer=("rsl fixture root", root_key),
              subject="rsl fixture intermediate", key=inter_key, algorithm=hashes.SHA256()):
        return _cert(subject, issuer[0], key.public_key(), issuer[1], algorithm, NB, NA,
                     exts or _ca_extensions(ca=ca, permitted=permitted, path_length=path_length))

    leaf_key = ec.generate_private_key(ec.SECP384R1())

    def leaf(san=RS, key=leaf_key, issuer=("rsl fixture intermediate", inter_key), exts=None,
             nb=NB, na=NA, eku=ExtendedKeyUsageOID.CODE_SIGNING):
        return _cert(san, issuer[0], key.public_key(), issuer[1], hashes.SHA384(), nb, na,
                     exts or _leaf_extensions(san, eku))

    good_inter = inter()
    chains = {
        "good": [leaf(), good_inter, root],
        "onecrl": [leaf(san="onecrl.content-signature.mozilla.org", key=ec.generate_private_key(ec.SECP384R1())),
                   good_inter, root],
        "short-leaf": [leaf(nb=datetime.datetime(2025, 1, 1, tzinfo=UTC),
                            na=datetime.datetime(2025, 2, 1, tzinfo=UTC)), good_inter, root],
        "broken-link": [leaf(issuer=("rsl fixture intermediate", ec.generate_private_key(ec.SECP384R1()))),
                        good_inter, root],
        "wrong-issuer-name": [leaf(issuer=("someone else", inter_key)), good_inter, root],
        "unordered": [leaf(), root, good_inter],
        "no-root": [leaf(), good_inter],
        "leaf-only": [leaf()],
        "non-ca-intermediate": [leaf(), inter(ca=False), root],
        "name-constraints": [leaf(), inter(permitted=["example.com"]), root],
        "no-code-signing": [leaf(eku=ExtendedKeyUsageOID.SERVER_AUTH), good_inter, root],
        "leaf-p256": [leaf(key=ec.generate_private_key(ec.SECP256R1())), good_inter, root],
        "leaf-is-ca": [leaf(exts=_ca_extensions(ca=True, permitted=None) + [
            (x509.SubjectAlternativeName([x509.DNSName(RS)]), False)]), good_inter, root],
        "critical-extension": [leaf(exts=_leaf_extensions(RS) + [
            (x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"), True)]),
            good_inter, root],
        "too-long": [leaf()] + [good_inter] * 8 + [root],
    }
    # An intermediate that may sign certificates only... without keyCertSign.
    ku_exts = [e for e in _ca_extensions(permitted=CONSTRAINT) if not isinstance(e[0], x509.KeyUsage)]
    ku_exts.append((x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                  data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                  crl_sign=True, encipher_only=False, decipher_only=False), True))
    chains["issuer-key-usage"] = [leaf(), inter(exts=ku_exts), root]
    # Two intermediates under one that allows none below it.
    sub_key = ec.generate_private_key(ec.SECP384R1())
    sub = inter(subject="rsl fixture sub-intermediate", key=sub_key,
                issuer=("rsl fixture intermediate", inter_key), algorithm=hashes.SHA384())
    chains["path-length"] = [leaf(issuer=("rsl fixture sub-intermediate", sub_key)), sub, good_inter, root]
    # An all-P-256 upper chain (ecdsa-with-SHA256 links) and an RSA SHA-512 link.
    p256_root_key = ec.generate_private_key(ec.SECP256R1())
    p256_root = _cert("rsl fixture p256 root", "rsl fixture p256 root", p256_root_key.public_key(),
                      p256_root_key, hashes.SHA256(), NB, NA, _ca_extensions(path_length=None))
    p256_inter = inter(issuer=("rsl fixture p256 root", p256_root_key), algorithm=hashes.SHA256())
    chains["p256-root"] = [leaf(), p256_inter, p256_root]
    chains["rsa-sha512"] = [leaf(), inter(algorithm=hashes.SHA512()), root]

    for name, certs in chains.items():
        with open(os.path.join(OUT, f"{name}.pem"), "wb") as f:
            f.write(pem(*certs))
    der = leaf_key.sign(PAYLOAD, ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    import hashlib
    root_hash = ":".join(f"{b:02X}" for b in hashlib.sha256(root.public_bytes(serialization.Encoding.DER)).digest())
    with open(os.path.join(OUT, "signature.json"), "w") as f:
        json.dump({
            "payload": PAYLOAD.decode(),
            "signature": base64.urlsafe_b64encode(raw).decode().rstrip("="),
            "root_hash": root_hash,
        }, f, indent=2)
        f.write("\n")
    print(f"wrote {len(chains)} chains and signature.json to {OUT}")


if __name__ == "__main__":
    main()
