"""A code block's tokens are Pygments' own tokens, whichever way they are found: the faster lexing
the REPL uses gives, for any text, exactly what the language's Pygments lexer gives."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pygments.lexers import get_lexer_by_name

from toolchat.terminal.lexing import tokenizer

# the languages answers name most, and ones whose rules use what joining must leave alone or
# change: backreferences (bash heredocs, Ruby), named groups, `(?i)` rules (Python's string prefixes,
# SQL), callbacks (Markdown's fences lex their own language), states pushed and popped (HTML, JSON)
LANGUAGES = [
    "python", "c", "cpp", "javascript", "typescript", "rust", "go", "java", "bash", "console", "ruby",
    "php", "sql", "json", "yaml", "toml", "ini", "html", "css", "markdown", "diff", "dockerfile", "make",
    "lua", "haskell", "kotlin", "swift", "perl", "text",
]  # fmt: skip

# pieces a model's code is made of, including the ones that open or close a state
PIECES = [
    '"', "'", '"""', "'''", "`", "/*", "*/", "//", "#", "--", "<!--", "-->", "\n", " ", "\t", "\\", "{", "}",
    "(", ")", "[", "]", "<", ">", "=", ":", ";", ",", ".", "$", "@", "%", "&", "|", "!", "?", "*", "-", "/",
    "0x1F", "12.5e-3", "if", "else", "def", "class", "return", "fn", "let", "end", "do", "x", "foo_bar", "Ünï",
    "日本", 'r"', 'f"', "b'", "${", "#{", "<<EOF", "EOF", "<?php", "?>", "<script>", "</script>", "```", "```python",
    "- ", "> ", "|-", "\r\n", "SELECT", "null", "true", "\x1b[2J", "\u202e",
]  # fmt: skip

PROGRAMS = {
    "python": 'def f(x):\n    """Doc\n    string."""\n    return rb"\\d" + F"{x!r:>{w}}"  # done\n',
    "c": 'int x = 1; /* a\n comment */ char *s = "a\\"b";\n#include <stdio.h>\n',
    "bash": "cat <<EOF > out\nline $HOME `date`\nEOF\necho 'single' \"double $x\"\n",
    "markdown": "# Title\n\n```python\nprint('inner')\n```\n\n*em* and `code`\n",
    "html": '<div class="a">text<script>var s = "</div>";</script></div>\n',
    "sql": "select Name from T where x = 'it''s' -- note\n",
}


@pytest.mark.parametrize("language", sorted(PROGRAMS))
def test_a_program_is_lexed_into_pygments_own_tokens(language: str) -> None:
    lexer = get_lexer_by_name(language, stripnl=False, ensurenl=False)
    tokens = list(tokenizer(lexer)(PROGRAMS[language]))
    assert tokens == list(lexer.get_tokens_unprocessed(PROGRAMS[language]))
    assert len({token for _, token, _ in tokens}) > 3  # coloured: more than text and white space


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(LANGUAGES), st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_any_text_in_any_language_is_lexed_into_pygments_own_tokens(language: str, text: str) -> None:
    lexer = get_lexer_by_name(language, stripnl=False, ensurenl=False)
    assert list(tokenizer(lexer)(text)) == list(lexer.get_tokens_unprocessed(text))


def test_python_rules_are_joined_and_the_rules_that_count_groups_are_left_alone() -> None:
    """The speed comes from joining a state's rules (Python's root state has 54); a rule with a
    backreference would match otherwise joined, and is tried on its own, in its place."""
    python = get_lexer_by_name("python")
    assert tokenizer(python) != python.get_tokens_unprocessed
    bash = get_lexer_by_name("bash", stripnl=False, ensurenl=False)
    heredoc = "cat <<EOF\n$HOME is here\nEOF\necho done\n"
    tokens = list(tokenizer(bash)(heredoc))
    assert tokens == list(bash.get_tokens_unprocessed(heredoc))
    assert any(value == "echo" and "Builtin" in str(token) for _, token, value in tokens)  # past the heredoc
    heredoc_rule = next(rule[0] for rule in bash.tokens["basic"] if rule[0].startswith("<<-?"))
    assert re.search(r"\\2", heredoc_rule)  # the rule the heredoc came through counts groups


def test_a_lexer_that_is_not_a_plain_regex_lexer_lexes_as_pygments_does() -> None:
    console = get_lexer_by_name("pycon")  # a shell session: it lexes its prompts and hands code on
    assert tokenizer(console) == console.get_tokens_unprocessed
    session = ">>> x = 1\n>>> x\n1\n"
    assert list(tokenizer(console)(session)) == list(console.get_tokens_unprocessed(session))
