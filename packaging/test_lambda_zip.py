"""The Lambda zip check accepts the zip `make` built (LAMBDA_ZIP) and rejects what would not run on
provided.al2023: made by patching that zip's real bootstrap (same-length edits of the names its
ELF file needs) or its layout."""

import contextlib
import io
import os
import sys
import tempfile
import unittest
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lambda_zip  # noqa: E402

ZIP = os.environ.get("LAMBDA_ZIP", "")


class LambdaZipCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(ZIP):
            raise RuntimeError(f"LAMBDA_ZIP={ZIP!r} is not a file: run `make lambda-zip-check`")
        with zipfile.ZipFile(ZIP) as z:
            cls.bootstrap = z.read("bootstrap")
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def zip_of(self, files, mode=0o100755):
        path = os.path.join(self.tmp.name, f"{self.id()}-{len(os.listdir(self.tmp.name))}.zip")
        with zipfile.ZipFile(path, "w") as z:
            for name, data in files:
                info = zipfile.ZipInfo(name)
                info.create_system = 3
                info.external_attr = mode << 16
                z.writestr(info, data)
        return path

    def check(self, path):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            lambda_zip.check(path)
        return out.getvalue()

    def patched(self, old, new):
        self.assertEqual(len(old), len(new))
        self.assertIn(old, self.bootstrap)
        return self.zip_of([("bootstrap", self.bootstrap.replace(old, new))])

    def test_the_built_zip_passes_and_needs_glibc_2_34_at_most(self):
        summary = self.check(ZIP)
        self.assertIn("at most (provided.al2023: GLIBC_2.34)", summary)
        needed, versions = lambda_zip.elf_requirements(self.bootstrap)
        self.assertIn("libc.so.6", needed)
        newest = max(v for n in versions["libc.so.6"] if (v := lambda_zip.glibc_version(n)))
        self.assertLessEqual(newest, (2, 34))

    def test_a_newer_glibc_symbol_version_is_rejected_and_named(self):
        path = self.patched(b"GLIBC_2.34\0", b"GLIBC_2.39\0")
        with self.assertRaisesRegex(lambda_zip.CheckFailed, r"needs GLIBC_2\.39: provided\.al2023 has glibc 2\.34"):
            self.check(path)

    def test_a_library_that_al2023_lacks_is_rejected(self):
        path = self.patched(b"libm.so.6\0", b"libz.so.6\0")
        with self.assertRaisesRegex(lambda_zip.CheckFailed, r"lacks: \['libz\.so\.6'\]"):
            self.check(path)

    def test_the_zip_holds_exactly_one_executable_bootstrap(self):
        for files, mode in [
            ([("bootstrap", self.bootstrap), ("README", b"x")], 0o100755),
            ([("remote-settings-lambdas", self.bootstrap)], 0o100755),
            ([("bootstrap", self.bootstrap)], 0o100644),
        ]:
            with self.assertRaises(lambda_zip.CheckFailed):
                self.check(self.zip_of(files, mode))

    def test_a_file_that_is_not_an_x86_64_elf_is_rejected(self):
        with self.assertRaisesRegex(lambda_zip.CheckFailed, "not a 64-bit little-endian ELF"):
            self.check(self.zip_of([("bootstrap", b"#!/bin/sh\necho hi\n")]))
        arm = bytearray(self.bootstrap)
        arm[0x12:0x14] = (183).to_bytes(2, "little")  # EM_AARCH64
        with self.assertRaisesRegex(lambda_zip.CheckFailed, "not x86-64"):
            self.check(self.zip_of([("bootstrap", bytes(arm))]))

    def test_the_zip_is_reproducible(self):
        a, b = (os.path.join(self.tmp.name, n) for n in ("a.zip", "b.zip"))
        binary = os.path.join(self.tmp.name, "bin")
        with open(binary, "wb") as f:
            f.write(self.bootstrap[:100_000])
        lambda_zip.write_zip(binary, a)
        lambda_zip.write_zip(binary, b)
        with open(a, "rb") as fa, open(b, "rb") as fb:
            self.assertEqual(fa.read(), fb.read())


if __name__ == "__main__":
    unittest.main()
