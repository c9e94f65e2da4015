#!/usr/bin/env python3
"""Package and check the AWS Lambda zip: one executable named `bootstrap` that runs on the
`provided.al2023` runtime (glibc 2.34, x86_64).

Usage:
  lambda_zip.py BINARY ZIP   write ZIP holding BINARY as `bootstrap`, then check it
  lambda_zip.py --check ZIP  check ZIP only

The check reads the ELF file itself (no binutils needed): x86-64, only the shared libraries that
provided.al2023 has, and no glibc symbol version newer than 2.34. It exits 1 naming what is wrong.
"""

import io
import struct
import sys
import zipfile

MAX_GLIBC = (2, 34)
# Shared libraries every provided.al2023 image has (glibc's and libgcc's).
ALLOWED_LIBRARIES = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "ld-linux-x86-64.so.2",
    "libgcc_s.so.1",
}
SHT_DYNAMIC = 6
SHT_GNU_VERNEED = 0x6FFFFFFE
DT_NEEDED = 1
EM_X86_64 = 62


class CheckFailed(Exception):
    pass


def write_zip(binary, zip_path):
    with open(binary, "rb") as f:
        data = f.read()
    # Fixed date and mode: the same binary gives the same zip.
    info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    info.create_system = 3  # unix: Lambda takes the permission bits from here
    info.external_attr = (0o100755 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr(info, data, compresslevel=9)


def cstring(blob, offset):
    return blob[offset : blob.index(b"\0", offset)].decode()


def elf_requirements(elf):
    """(needed libraries, {library: [version names]}) of an ELF64 little-endian executable."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise CheckFailed("bootstrap is not a 64-bit little-endian ELF file")
    (machine,) = struct.unpack_from("<H", elf, 0x12)
    if machine != EM_X86_64:
        raise CheckFailed(f"bootstrap is for ELF machine {machine}, not x86-64 ({EM_X86_64})")
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = []
    for i in range(shnum):
        _, sh_type, _, _, offset, size, link, info, _, _ = struct.unpack_from(
            "<IIQQQQIIQQ", elf, shoff + i * shentsize
        )
        sections.append((sh_type, offset, size, link, info))

    def strtab(index):
        _, offset, size, _, _ = sections[index]
        return elf[offset : offset + size]

    needed, versions = [], {}
    for sh_type, offset, size, link, info in sections:
        if sh_type == SHT_DYNAMIC:
            strings = strtab(link)
            for pos in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", elf, pos)
                if tag == DT_NEEDED:
                    needed.append(cstring(strings, value))
        elif sh_type == SHT_GNU_VERNEED:
            strings = strtab(link)
            pos = offset
            for _ in range(info):
                _, count, file, aux, next_need = struct.unpack_from("<HHIII", elf, pos)
                names = versions.setdefault(cstring(strings, file), [])
                apos = pos + aux
                for _ in range(count):
                    _, _, _, name, next_aux = struct.unpack_from("<IHHII", elf, apos)
                    names.append(cstring(strings, name))
                    apos += next_aux
                pos += next_need
    return needed, versions


def glibc_version(name):
    """(2, 34) for "GLIBC_2.34"; None for names that are not glibc releases."""
    if not name.startswith("GLIBC_"):
        return None
    try:
        return tuple(int(p) for p in name[len("GLIBC_") :].split("."))
    except ValueError:
        return None


def check(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        entries = z.infolist()
        if [e.filename for e in entries] != ["bootstrap"]:
            raise CheckFailed(
                f"the zip must hold exactly one file, bootstrap; it holds {[e.filename for e in entries]}"
            )
        entry = entries[0]
        mode = entry.external_attr >> 16
        if entry.create_system != 3 or mode & 0o170000 != 0o100000 or mode & 0o555 != 0o555:
            raise CheckFailed(f"bootstrap is not a regular file executable by all (mode {oct(mode)})")
        elf = z.read(entry)
    needed, versions = elf_requirements(elf)
    foreign = sorted(set(needed) - ALLOWED_LIBRARIES)
    if foreign:
        raise CheckFailed(f"bootstrap needs libraries that provided.al2023 lacks: {foreign}")
    names = [n for names in versions.values() for n in names]
    private = sorted({n for n in names if n.startswith("GLIBC_") and glibc_version(n) is None})
    if private:
        raise CheckFailed(f"bootstrap needs glibc-private symbol versions: {private}")
    glibc = sorted({v for v in map(glibc_version, names) if v is not None})
    newest = glibc[-1] if glibc else None
    if newest and newest > MAX_GLIBC:
        too_new = [f"GLIBC_{'.'.join(map(str, v))}" for v in glibc if v > MAX_GLIBC]
        raise CheckFailed(
            f"bootstrap needs {', '.join(too_new)}: provided.al2023 has glibc 2.34 "
            "(find the symbols with `readelf -W --dyn-syms`)"
        )
    newest_text = "GLIBC_" + ".".join(map(str, newest)) if newest else "no glibc version"
    with open(zip_path, "rb") as f:
        zip_size = len(f.read())
    print(
        f"{zip_path}: bootstrap {len(elf) / 1e6:.1f} MB, zip {zip_size / 1e6:.1f} MB; "
        f"needs {newest_text} at most (provided.al2023: GLIBC_2.34) and {', '.join(needed) or 'no library'}"
    )


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "--check":
            check(argv[2])
        elif len(argv) == 3 and not argv[1].startswith("-"):
            write_zip(argv[1], argv[2])
            check(argv[2])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except CheckFailed as e:
        print(f"error: {argv[-1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
