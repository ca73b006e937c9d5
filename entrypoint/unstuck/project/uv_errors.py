r"""What a failed uv run says, in one line: the package, the reason, the fix.

uv prints its headline first (`error: Failed to build \`uwsgi==2.0.31\``) and the build's own output
after it: a setuptools traceback, a page of license warnings, and at the very end the cause
(`Exception: you need a C compiler to build uWSGI`, `No such file or directory: 'pg_config'`). So the
headline names the package and the LAST lines name the reason: error_lines() keeps both and drops the
middle; summary() reads them as a person would. Pure: lines in, text out.
"""

from __future__ import annotations

import re

HEAD_LINES = 3  # uv's headline and its `cause:` lines
TAIL_LINES = 10  # the end of the build's output, where the cause is
# The Debian packages the image installs for builds by default (Dockerfile ARG UNSTUCK_BUILD_PACKAGES).
DEFAULT_BUILD_PACKAGES = "gcc libc6-dev libpq-dev"
NO_COMPILER = re.compile(
    r"you need a c compiler|no such file or directory: '(?:[\w.-]+-)?(?:gcc|cc|g\+\+|c\+\+)'"
    r"|unable to execute '(?:[\w.-]+-)?(?:gcc|cc)'|\b(?:gcc|cc|g\+\+): (?:command )?not found"
    r"|command '(?:[\w./-]+/)?(?:[\w.-]+-)?(?:gcc|cc)' failed: no such file|linker `cc` not found|no acceptable c compiler",
    re.I)
MISSING_HEADER = re.compile(r"fatal error: ([\w/+.-]+\.h): No such file or directory")
# A missing header or tool -> the Debian package that has it.
DEBIAN = {
    "pg_config": "libpq-dev", "libpq-fe.h": "libpq-dev", "mysql_config": "default-libmysqlclient-dev",
    "mysql.h": "default-libmysqlclient-dev", "Python.h": "python3-dev", "ldap.h": "libldap2-dev",
    "lber.h": "libldap2-dev", "sasl/sasl.h": "libsasl2-dev", "ffi.h": "libffi-dev", "openssl": "libssl-dev",
    "libxml": "libxml2-dev", "libxslt": "libxslt1-dev", "jpeglib.h": "libjpeg-dev", "zlib.h": "zlib1g-dev",
    "yaml.h": "libyaml-dev", "krb5.h": "libkrb5-dev", "gssapi": "libkrb5-dev", "sqlite3.h": "libsqlite3-dev",
    "xmlsec": "libxmlsec1-dev", "cairo.h": "libcairo2-dev", "freetype": "libfreetype-dev",
}
MISSING_TOOL = re.compile(r"(?:No such file or directory: '|could not find |)(pg_config|mysql_config)\b", re.I)


def _is_uv_head(line: str) -> bool:
    text = line.lstrip()
    return text.startswith(("error:", "×", "cause:", "├─▶", "╰─▶"))


def error_lines(lines: list[str]) -> list[str]:
    """uv's headline (from its first `error:`/`×` line) and the output's last lines, never cut before the
    cause; a `...` line stands for what is left out in between."""
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith(("error:", "×"))), None)
    if start is None:
        return lines[-TAIL_LINES:]
    rest = lines[start:]
    head = rest[:HEAD_LINES]
    tail = [line for line in rest[HEAD_LINES:] if line.strip()][-TAIL_LINES:]
    skipped = len([line for line in rest[HEAD_LINES:] if line.strip()]) - len(tail)
    return head + (["    ..."] if skipped > 0 else []) + tail


def _package(text: str) -> str | None:
    m = re.search(r"Failed to (?:build|download|prepare distributions for|install|fetch) `([^`]+)`", text)
    if not m:
        return None
    name = m.group(1).split(" @ ")[0]
    package = " ".join(name.split("==", 1))
    needed = re.search(r"`[^`]+` \(v[^)]+\) was included because `([^`]+)`", text)
    return f"{package} (needed by {needed.group(1).split(' ')[0]})" if needed else package


def _debian(name: str) -> str | None:
    return next((pkg for key, pkg in DEBIAN.items() if name == key or name.startswith(key + "/")
                 or name.startswith(key)), None)


def _fix(packages: str) -> str:
    return (f"rebuild the image with --build-arg UNSTUCK_BUILD_PACKAGES=\"{DEFAULT_BUILD_PACKAGES} {packages}\""
            if packages not in DEFAULT_BUILD_PACKAGES.split() else
            f"rebuild the image with the default UNSTUCK_BUILD_PACKAGES (\"{DEFAULT_BUILD_PACKAGES}\")")


def _reason(lines: list[str]) -> str:
    """Why, from the output's last lines first (the build's own last words are the cause)."""
    text = "\n".join(lines)
    if NO_COMPILER.search(text):
        return f"no C compiler in this image; {_fix('gcc')}"
    header = MISSING_HEADER.search(text)
    if header:
        debian = _debian(header.group(1))
        return (f"the C header {header.group(1)} is missing" + (f" (Debian package {debian}); {_fix(debian)}"
                                                                 if debian else ""))
    tool = MISSING_TOOL.search(text)
    if tool and ("not found" in text.lower() or "no such file" in text.lower() or "could not find" in text.lower()):
        debian = DEBIAN[tool.group(1)]
        return f"{tool.group(1)} is missing (Debian package {debian}); {_fix(debian)}"
    stale = next((line.strip() for line in lines if "needs to be updated" in line), None)
    if stale:
        return re.sub(r"^error:\s*", "", stale) + "; run `uv lock`"
    body = [line.strip() for line in lines if line.strip() and not _is_uv_head(line)
            and not line.lstrip().startswith(("hint:", "help:"))]
    last = next((line for line in reversed(body) if re.match(r"(error:|\w*(Error|Exception)\b)", line)), None)
    if last:
        return last
    causes = [line.strip() for line in lines if line.lstrip().startswith(("cause:", "╰─▶"))]
    if causes:  # uv's own explanation, innermost last (no build output: uv_build, a missing file ...)
        return re.sub(r"^(cause:|╰─▶)\s*", "", causes[-1])
    first = next((line.strip() for line in lines if line.lstrip().startswith(("error:", "×"))), None)
    return re.sub(r"^(error:|×)\s*", "", first) if first else (body[-1] if body else "")


def summary(lines: list[str], fallback: str) -> str:
    """One line: `<package> cannot be built: <reason>; <fix>`, or uv's reason, or `fallback`."""
    text = "\n".join(lines)
    package = _package(text)
    reason = _reason(lines)
    if package and "Failed to build" in text:
        return f"{package} cannot be built: {reason or 'see the log'}"
    if package:
        return f"{package}: {reason}" if reason else package
    return reason or fallback
