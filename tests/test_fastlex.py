"""fastlex: Pygments' lexers, faster, yielding exactly Pygments' own tokens.

The REPL highlights every line of a streamed code block; fastlex tries only the rules that can
start with the next character. Any difference from Pygments would be a wrong colour on screen, so
each check here lexes the same text with a plain Pygments lexer and an accelerated one and compares
every token: real code in many languages, text built from the pieces code is made of, and the
characters that fold to ASCII letters when case is ignored."""

from __future__ import annotations

import inspect
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pygments.lexers import get_all_lexers, get_lexer_by_name

from toolchat.terminal import fastlex

SNIPPETS = {
    "javascript": "import x from './x.js';\n"
    "const f = async (a, b = 2) => { /* c */ return `t ${a + b}` };\n"
    "class A extends B { #p = 1; static get y() { return /re[g]+x/gi.test('s') } }\n// end\n",
    "typescript": "interface P<T> { id: number; name?: string }\nexport function f<T>(p: P<T>): T | null {\n"
    "  const x: Record<string, unknown> = {}; return null as any; }\n",
    "bash": "#!/bin/sh\nset -eu\nfor f in *.txt; do\n  echo \"$f ${HOME:-/}\" | grep -v '^#' >/dev/null 2>&1\n"
    "done\ncat <<EOF\nhere $USER\nEOF\nx=$(( 1 + 2 )); [[ -n $x ]] && exit 0\n",
    "rust": "use std::io;\n#[derive(Debug)]\nstruct P<'a> { s: &'a str }\nfn main() -> io::Result<()> {\n"
    "    let v: Vec<u32> = vec![1, 2, 0x1F]; println!(\"{} {:?}\", v.len(), 'c'); Ok(())\n}\n",
    "go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tx := make([]int, 10)\n'
    "\tgo func() { fmt.Println(x, `raw`) }()\n}\n",
    "java": 'public class A<T> implements B {\n  @Override public String toString() { return "a" + 1L; }\n}\n',
    "ruby": 'class A < B\n  def f(x, *y, &z) = x.map { |e| "#{e}!" }\nend\nputs :sym, %w[a b], /re/i\n',
    "sql": "SELECT a.id, COUNT(*) AS n FROM t a LEFT JOIN u ON u.id = a.id WHERE a.x = 'it''s' -- c\n"
    "GROUP BY 1 HAVING n > 10;\ncreate table T (id integer primary key);\n",
    "html": "<!DOCTYPE html>\n<html><head><style>p { color: red }</style><script>var a = 1 < 2;</script></head>\n"
    '<body><p class="x">Hi &amp; bye<!-- c --></p></body></html>\n',
    "css": '@media (max-width: 600px) { .a > b::before { content: "x"; margin: 0 1.5em !important } }\n',
    "markdown": "# Title\n\nSome *emphasis* and `code`.\n\n- item\n  1. sub\n\n```python\nprint(1)\n```\n> quote\n",
    "diff": "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-old line\n+new line\n context\n",
    "toml": '[tool.x]\nname = "toolchat"\nlist = [1, 2.5, true]\n# comment\ndate = 2026-12-06T02:00:00Z\n',
    "ini": "[section]\nkey = value\n; comment\n",
    "dockerfile": 'FROM python:3.11\nRUN pip install x && \\\n    echo done\nCMD ["toolchat"]\n',
    "text": "plain text\nwith lines\n",
}

# what code is made of, and what it is not: quotes, comments, brackets, escapes, tabs, CR LF,
# NUL, non-ASCII letters, the line separator, and characters that fold to ASCII ignoring case
PIECES = [
    "def ",
    "class ",
    "fn ",
    "if ",
    "else",
    "return ",
    "SELECT ",
    "from ",
    '"',
    "'",
    '"""',
    "#",
    "//",
    "/*",
    "*/",
    "<",
    ">",
    "</",
    "<!--",
    "-->",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\n",
    "\n\n",
    " ",
    "\t",
    "x",
    "Bar_9",
    "1",
    "0x1F",
    "1.5e3",
    ".",
    "\\",
    "\\n",
    "$",
    "${",
    "`",
    "@",
    ":",
    "=",
    "=>",
    "->",
    ";",
    ",",
    "+",
    "-",
    "*",
    "%",
    "&&",
    "|",
    "!",
    "?",
    "r'",
    "f'{",
    "```",
    "---",
    "- ",
    "> ",
    "key: ",
    "\r\n",
    "\x00",
    "\x0b",
    "\x1c",
    "\x85",
    "\u2028",
    "é",
    "日本",
    "\u017f",
    "\u212a",
    "\u0130",
    "\u017felect ",
]


def lex_both(language: str, text: str) -> tuple[list, list, object]:
    plain = get_lexer_by_name(language, stripnl=False, ensurenl=False)
    fast = get_lexer_by_name(language, stripnl=False, ensurenl=False)
    fastlex.accelerate(fast)
    return list(plain.get_tokens_unprocessed(text)), list(fast.get_tokens_unprocessed(text)), fast


def accelerated(lexer: object) -> bool:
    return "get_tokens_unprocessed" in vars(lexer)


def test_python_source_lexes_to_pygments_own_tokens():
    import argparse
    import http.client

    source = inspect.getsource(http.client) + inspect.getsource(argparse)
    want, got, lexer = lex_both("python", source)
    assert accelerated(lexer)
    assert len(want) > 20_000
    assert got == want


@pytest.mark.parametrize("language", sorted(SNIPPETS))
def test_code_in_each_language_lexes_to_pygments_own_tokens(language):
    text = SNIPPETS[language] * 3
    want, got, _ = lex_both(language, text)
    assert got == want


def test_a_lexer_whose_rules_depend_on_an_option_gets_the_rules_of_its_own_option():
    # C#'s rules differ with `unicodelevel`: which letters may start a name
    text = "class A { void f() { int \u00f1ame = 1; int \u65e5 = 2; } }\n"
    for first, then in (("basic", "full"), ("full", "none"), ("none", "basic")):
        fastlex.accelerate(get_lexer_by_name("csharp", unicodelevel=first))
        plain = get_lexer_by_name("csharp", unicodelevel=then, stripnl=False, ensurenl=False)
        fast = get_lexer_by_name("csharp", unicodelevel=then, stripnl=False, ensurenl=False)
        fastlex.accelerate(fast)
        assert accelerated(fast)
        assert list(fast.get_tokens_unprocessed(text)) == list(plain.get_tokens_unprocessed(text)), (first, then)


def test_a_lexer_with_its_own_loop_is_left_as_it_is():
    # C's lexer post-processes RegexLexer's tokens; JSON's is hand-written: neither is touched
    for language in ("c", "json", "yaml"):
        lexer = get_lexer_by_name(language)
        fastlex.accelerate(lexer)
        assert not accelerated(lexer), language
    assert accelerated(lex_both("python", "x = 1\n")[2])


def test_a_letter_that_folds_to_ascii_ignoring_case_is_lexed_as_pygments_does():
    # SQL's keywords ignore case, and Unicode folds U+017F (long s) to s and the Kelvin sign to k:
    # a first-character table of only ASCII letters would skip the keyword rule at "\u017felect"
    text = "\u017fELECT 1;\n\u017felect \u212aEY from t;\nSELECT \u0130D;\n"
    want, got, lexer = lex_both("sql", text)
    assert accelerated(lexer)
    assert any(value == "\u017fELECT" for _, _, value in want)  # Pygments does take it as one word
    assert got == want


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["python", "javascript", "bash", "rust", "sql", "html", "markdown", "ruby"]),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=80),
)
def test_text_made_of_code_pieces_lexes_to_pygments_own_tokens(language, pieces):
    text = "".join(pieces)
    want, got, _ = lex_both(language, text)
    assert got == want


def test_every_pygments_lexer_it_accelerates_agrees_on_code_pieces():
    names = sorted({aliases[0] for _, aliases, _, _ in get_all_lexers() if aliases})
    checked = 0
    for name in names:
        plain = get_lexer_by_name(name, stripnl=False, ensurenl=False)
        fast = get_lexer_by_name(name, stripnl=False, ensurenl=False)
        fastlex.accelerate(fast)
        if not accelerated(fast):
            continue
        checked += 1
        rng = random.Random(name)
        for _ in range(3):
            text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 60)))
            assert list(fast.get_tokens_unprocessed(text)) == list(plain.get_tokens_unprocessed(text)), (name, text)
    assert checked > 300  # most of Pygments' lexers are plain RegexLexers
