#!/usr/bin/env python3
"""Lists functions longer than a limit (default 80 lines) in C++ sources.

Usage: long-functions.py [--limit N] FILE...   (prints "file:line: name (N lines)").
A function is a brace block opened at namespace scope (or class scope, for inline
members) whose header line contains '('; namespace blocks are transparent. Comments
and string literals are skipped, so braces inside them do not count.
"""
import re
import sys


def strip(src):
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith('//', i):
            j = src.find('\n', i)
            i = n if j < 0 else j
        elif src.startswith('/*', i):
            j = src.find('*/', i + 2)
            seg = src[i:(n if j < 0 else j + 2)]
            out.append(re.sub(r'[^\n]', ' ', seg))
            i = n if j < 0 else j + 2
        elif c == '"' or c == "'":
            q, j = c, i + 1
            while j < n and src[j] != q:
                j += 2 if src[j] == '\\' else 1
            out.append(q + ' ' * (j - i - 1) + q)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def functions(path):
    text = strip(open(path, encoding='utf-8').read())
    stack = []  # entries: ('ns'|'fn'|'other', start_line, header)
    line = 1
    last = 0
    for i, c in enumerate(text):
        if c == '\n':
            line += 1
        elif c == '{':
            header = text[last:i]
            h = ' '.join(s.strip() for s in header.strip().split('\n'))
            depth_fn = any(k == 'fn' for k, _, _ in stack)
            if re.search(r'\bnamespace\b[^;{}]*$', header) or re.search(r'extern\s+"C"\s*$', header):
                kind = 'ns'
            elif not depth_fn and '(' in h and not re.search(r'\b(class|struct|enum|union)\b[^()]*$', h) \
                    and not h.rstrip().endswith('='):
                kind = 'fn'
            else:
                kind = 'other'
            stack.append((kind, line, h))
            last = i + 1
        elif c == '}':
            if stack:
                kind, start, h = stack.pop()
                if kind == 'fn' and not any(k == 'fn' for k, _, _ in stack):
                    yield start, line - start + 1, h
            last = i + 1
        elif c == ';':
            last = i + 1


def main(argv):
    limit = 80
    if argv[:1] == ['--limit']:
        limit, argv = int(argv[1]), argv[2:]
    found = 0
    for path in argv:
        for start, length, h in functions(path):
            if length > limit:
                name = re.sub(r'\s+', ' ', h)[:100]
                print(f'{path}:{start}: {name} ({length} lines)')
                found += 1
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
