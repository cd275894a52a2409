#!/usr/bin/env python3
"""The SDK header hash (ARCHITECTURE §8.17): what identifies the SDK a plugin was built against.

Usage:
  sdk_hash.py header [--depfile FILE] HEADER...
                                 print <leoflow/sdk_hash.h> (core/include/leoflow/meson.build runs this)
  sdk_hash.py hash HEADER...     print the hash alone, e.g. to fill a line of sdk_versions.txt

HEADER is every installed SDK header, core/include/leoflow/*.h. The hash is the first 16 hex digits
of a SHA-256 over each header's name and canonical text, in name order. The canonical text is what
the compiler sees, so editing a comment or re-indenting does not change the hash, and every other
edit does:
  - lines ending in a backslash are joined, comments become one space (translation phases 2, 3);
  - string and character literals, raw strings included, are kept byte for byte;
  - outside preprocessor directives, whitespace (line breaks too) between two tokens is one space
    where it separates two words or literals, and none at all next to a punctuator (`f (x)` is
    `f(x)`) unless two punctuators would read as one without it (`& &` is not `&&`);
  - a directive stays one line, each run of whitespace in it one space (`#define F(x)` and
    `#define F (x)` differ, as they do for the preprocessor).
"""
import hashlib
import os
import re
import sys
import textwrap

HASH_DIGITS = 16

# A raw string's opening, after its optional encoding prefix: R"delimiter(
RAW_OPEN = re.compile(r'(?:u8|u|U|L)?R"([^ ()\\\t\v\f\n]{0,16})\(')
QUOTED_PREFIX = re.compile(r'(?:u8|u|U|L)?["\']')
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A preprocessing number: digits, digit separators, exponents with a sign, suffixes.
PP_NUMBER = re.compile(r"\.?[0-9](?:[eEpP][+-]|'[0-9A-Za-z_]|[0-9A-Za-z_.])*")


def tokens(text: str):
    """(kind, text) pairs: 'space', 'newline', 'word' (identifiers, numbers), 'literal', 'punct'."""
    text = text.replace("\r\n", "\n").replace("\\\n", "")
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            yield "newline", c
            i += 1
        elif c in " \t\v\f":
            while i < n and text[i] in " \t\v\f":
                i += 1
            yield "space", " "
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            yield "space", " "
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated comment")
            i = end + 2
            yield "space", " "
        elif (raw := RAW_OPEN.match(text, i)) is not None:
            close = ")" + raw.group(1) + '"'
            end = text.find(close, raw.end())
            if end < 0:
                raise ValueError("unterminated raw string")
            yield "literal", text[i:end + len(close)]
            i = end + len(close)
        elif (quoted := QUOTED_PREFIX.match(text, i)) is not None:
            quote = text[quoted.end() - 1]
            j = quoted.end()
            while j < n and text[j] != quote:
                if text[j] == "\n":
                    raise ValueError("unterminated literal")
                j += 2 if text[j] == "\\" else 1
            yield "literal", text[i:j + 1]
            i = j + 1
        elif (word := IDENTIFIER.match(text, i) or PP_NUMBER.match(text, i)) is not None:
            yield "word", word.group(0)
            i = word.end()
        else:
            yield "punct", c
            i += 1


# Two punctuators that a space keeps apart: together they would read as one (`& &` is not `&&`).
JOINING_PUNCTUATORS = {
    "::", "->", ".*", "..", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+=", "-=",
    "*=", "/=", "%=", "&=", "|=", "^=", "##", "<:", ":>", "<%", "%>", "%:",
}


def significant_space(before, after) -> bool:
    """Whether whitespace between two tokens, each (kind, text), changes the code."""
    if before[0] == "punct" and after[0] == "punct":
        return before[1] + after[1] in JOINING_PUNCTUATORS
    return "punct" not in (before[0], after[0])


def canonical(text: str) -> str:
    """The header as the compiler sees it, with comments and layout-only whitespace dropped."""
    lines = []  # directives, and the code between them as one line each
    code = []  # (kind, text, preceded by whitespace) of the current run of code
    directive = None  # the tokens of the directive being read
    at_line_start = True
    space_before = False

    def flush_code():
        out = []
        prev = None
        for kind, tok, spaced in code:
            if spaced and prev is not None and significant_space(prev, (kind, tok)):
                out.append(" ")
            out.append(tok)
            prev = (kind, tok)
        if out:
            lines.append("".join(out))
        code.clear()

    for kind, tok in tokens(text):
        if directive is not None:
            if kind == "newline":
                lines.append("".join(directive).strip())
                directive = None
                at_line_start = True
            elif kind == "space":
                if directive and directive[-1] != " ":
                    directive.append(" ")
            else:
                directive.append(tok)
            continue
        if kind in ("space", "newline"):
            space_before = True
            if kind == "newline":
                at_line_start = True
            continue
        if at_line_start and tok == "#":
            flush_code()
            directive = ["#"]
        else:
            code.append((kind, tok, space_before))
        at_line_start = False
        space_before = False
    if directive is not None:
        lines.append("".join(directive).strip())
    flush_code()
    return "\n".join(lines) + "\n"


def sdk_hash(headers) -> str:
    digest = hashlib.sha256()
    for path in sorted(headers, key=os.path.basename):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            body = canonical(text)
        except ValueError as e:
            raise SystemExit(f"sdk_hash.py: {path}: {e}")
        digest.update(f"== leoflow/{os.path.basename(path)}\n".encode())
        digest.update(body.encode())
    return digest.hexdigest()[:HASH_DIGITS]


HEADER = """\
{comment}
#pragma once

/// The hash of the SDK headers this SDK consists of (ARCHITECTURE §8.17). A plugin carries it in its
/// descriptor; the host refuses a plugin of its own ABI major.minor whose headers hashed otherwise.
#define LEOFLOW_SDK_HASH "{hash}"
"""


def main(argv) -> int:
    args = argv[1:]
    mode = args.pop(0) if args else ""
    depfile = None
    if mode == "header" and args[:1] == ["--depfile"] and len(args) >= 2:
        depfile = args[1]
        args = args[2:]
    if mode not in ("header", "hash") or not args:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    value = sdk_hash(args)
    if mode == "hash":
        print(value)
        return 0
    names = ", ".join(sorted(os.path.basename(h) for h in args))
    comment = textwrap.fill(f"Generated by scripts/sdk_hash.py; do not edit. The SDK headers hashed: {names}.",
                            width=100, initial_indent="// ", subsequent_indent="// ", break_on_hyphens=False)
    sys.stdout.write(HEADER.format(comment=comment, hash=value))
    if depfile:
        # The headers are meson's inputs already; this adds the script, so a change to the hashing
        # reconfigures too.
        with open(depfile, "w", encoding="utf-8") as f:
            f.write(f"sdk_hash.h: {os.path.abspath(__file__)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
