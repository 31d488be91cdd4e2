"""Pygments' RegexLexer, faster: the same rules, the same tokens.

Pygments tries a state's rules one by one at every token, about 50 regex calls per token for
Python code, which made highlighting a long streamed code block the REPL's largest cost (issue 18;
benchmarks/RESULTS.md, section 10). Here the characters each rule can start with are read from its
parsed regex, once per rule table and state, and at each position only the rules that can start
with the next character are tried, in their original order (so the first that matches wins, as in
Pygments). A rule whose first characters cannot be told (a negated class, a rule that can match
empty) is tried everywhere; a lexer that is not a plain RegexLexer keeps Pygments' own loop.
tests/test_fastlex.py checks the tokens are Pygments' own, lexer by lexer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import Any, Optional

try:  # the regex parser of the standard library (private, hence every failure means "any")
    import re._parser as _parser  # type: ignore[import-not-found]
except ImportError:  # Python 3.10
    import sre_parse as _parser  # type: ignore[no-redef]

Tokens = Iterator[tuple[int, Any, str]]
Rule = tuple[Any, Any, Any]  # Pygments' (match function, action, new state)
First = Optional[tuple[frozenset[str], bool]]  # (ASCII first characters, may start non-ASCII); None: any
_ANY: First = None
_OTHER = "\x80"  # the key of every non-ASCII character
_END = ""  # the key of the end of the text: only rules that can match empty
_CATEGORIES = {
    name: "".join(chr(c) for c in range(128) if re.match(pattern, chr(c)))
    for name, pattern in (("CATEGORY_DIGIT", r"\d"), ("CATEGORY_SPACE", r"\s"), ("CATEGORY_WORD", r"\w"))
}
_ENGINES: dict[int, tuple[Any, _Engine]] = {}  # id of a rule table -> (the table, its engine)


def accelerate(lexer: Any) -> None:
    """Make `lexer` (a Pygments lexer instance) produce its tokens faster, if it is a plain
    RegexLexer; otherwise leave it as it is. What is learnt of the rules is kept per rule table
    (one per lexer class, or per option for the few lexers whose rules depend on one, such as C#'s
    `unicodelevel`), so the next code block in the same language starts warm."""
    from pygments.lexer import RegexLexer

    if type(lexer).get_tokens_unprocessed is not RegexLexer.get_tokens_unprocessed:
        return
    rules = lexer._tokens
    known = _ENGINES.get(id(rules))
    if known is None or known[0] is not rules:
        known = _ENGINES[id(rules)] = (rules, _Engine(rules))
    lexer.get_tokens_unprocessed = partial(known[1].tokens, lexer)


class _Engine:
    def __init__(self, rules: dict[str, list[Rule]]) -> None:
        self.rules = rules
        self.firsts: dict[str, list[First]] = {}
        self.tables: dict[str, dict[str, list[Rule]]] = {}  # state -> next character -> rules to try

    def table(self, state: str) -> dict[str, list[Rule]]:
        table = self.tables.get(state)
        if table is None:  # a state's regexes are parsed when it is first entered
            self.firsts[state] = [_first_of(rule[0]) for rule in self.rules[state]]
            table = self.tables[state] = {}
        return table

    def candidates(self, state: str, key: str) -> list[Rule]:
        chosen = [rule for rule, first in zip(self.rules[state], self.firsts[state]) if _may_start(first, key)]
        self.tables[state][key] = chosen
        return chosen

    def tokens(self, lexer: Any, text: str, stack: tuple[str, ...] = ("root",)) -> Tokens:
        """Exactly what RegexLexer.get_tokens_unprocessed yields for `text`."""
        from pygments.token import Error, Whitespace, _TokenType

        size = len(text)
        statestack = list(stack)
        state = statestack[-1]
        table = self.table(state)
        pos = 0
        while True:
            key = _END if pos >= size else text[pos] if text[pos] < _OTHER else _OTHER
            rules = table.get(key)
            if rules is None:
                rules = self.candidates(state, key)
            for rexmatch, action, new_state in rules:
                match = rexmatch(text, pos)
                if match:
                    if action is not None:
                        if type(action) is _TokenType:
                            yield pos, action, match.group()
                        else:
                            yield from action(lexer, match)
                    pos = match.end()
                    if new_state is not None:
                        _transition(statestack, new_state)
                        state = statestack[-1]
                        table = self.table(state)
                    break
            else:
                if pos >= size:
                    return
                if text[pos] == "\n":  # at the end of a line with no rule matching: back to the root
                    statestack = ["root"]
                    state = "root"
                    table = self.table(state)
                    yield pos, Whitespace, "\n"
                else:
                    yield pos, Error, text[pos]
                pos += 1


def _transition(statestack: list[str], new_state: Any) -> None:
    """Pygments' state change, as RegexLexer makes it."""
    if isinstance(new_state, tuple):
        for state in new_state:
            if state == "#pop":
                if len(statestack) > 1:
                    statestack.pop()
            elif state == "#push":
                statestack.append(statestack[-1])
            else:
                statestack.append(state)
    elif isinstance(new_state, int):
        if abs(new_state) >= len(statestack):
            del statestack[1:]
        else:
            del statestack[new_state:]
    elif new_state == "#push":
        statestack.append(statestack[-1])
    else:
        raise AssertionError(f"wrong state def: {new_state!r}")


def _may_start(first: First, key: str) -> bool:
    if first is None:
        return True
    if key == _END:
        return False
    return first[1] if key == _OTHER else key in first[0]


# ---- the characters a regex can start with, from its parse tree ----


def _first_of(rexmatch: Any) -> First:
    compiled = getattr(rexmatch, "__self__", None)
    if not isinstance(compiled, re.Pattern) or not isinstance(compiled.pattern, str):
        return _ANY
    try:
        tree = list(_parser.parse(compiled.pattern, compiled.flags))
        return _sequence(tree, bool(compiled.flags & re.IGNORECASE))
    except Exception:  # noqa: BLE001 - what the analysis does not understand may start anywhere
        return _ANY


def _sequence(items: list[tuple[Any, Any]], nocase: bool) -> First:
    """First characters of a whole regex; None when unknown or when it can match the empty string."""
    first, empty = _nested(items, nocase)
    return _ANY if empty else first


def _item(op: Any, av: Any, nocase: bool) -> tuple[First, bool]:
    """(first characters, whether it can match empty) of one parse-tree item."""
    name = op.name
    if name == "LITERAL":
        return _chars({chr(av)}, nocase), False
    if name == "IN":
        return _charset(av, nocase), False
    if name in ("AT", "ASSERT", "ASSERT_NOT"):
        return (frozenset(), False), True  # zero-width: what follows decides
    if name == "SUBPATTERN":
        add, remove = av[1], av[2]
        nocase = (nocase or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
        return _nested(list(av[3]), nocase)
    if name == "ATOMIC_GROUP":
        return _nested(list(av), nocase)
    if name == "BRANCH":
        ascii_chars: set[str] = set()
        other = nullable = False
        for alternative in av[1]:
            first, empty = _nested(list(alternative), nocase)
            if first is None:
                return _ANY, True
            ascii_chars |= first[0]
            other, nullable = other or first[1], nullable or empty
        return (frozenset(ascii_chars), other), nullable
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        first, empty = _nested(list(av[2]), nocase)
        return first, empty or av[0] == 0
    return _ANY, True  # ANY, NOT_LITERAL, GROUPREF, ...: any character


def _nested(items: list[tuple[Any, Any]], nocase: bool) -> tuple[First, bool]:
    """(first characters, can match empty) of a sub-sequence."""
    ascii_chars: set[str] = set()
    other = False
    for op, av in items:
        first, nullable = _item(op, av, nocase)
        if first is None:
            return _ANY, True
        ascii_chars |= first[0]
        other = other or first[1]
        if not nullable:
            return (frozenset(ascii_chars), other), False
    return (frozenset(ascii_chars), other), True


def _charset(items: list[tuple[Any, Any]], nocase: bool) -> First:
    chars: set[str] = set()
    other = False
    for op, av in items:
        name = op.name
        if name == "LITERAL":
            chars.add(chr(av))
        elif name == "RANGE":
            low, high = av
            if nocase and high > 127:
                return _ANY  # a non-ASCII character may fold to an ASCII one (U+017F to s)
            chars.update(chr(c) for c in range(low, min(high, 127) + 1))
            other = other or high > 127
        elif name == "CATEGORY" and av.name in _CATEGORIES:
            chars.update(_CATEGORIES[av.name])
            other = True
        else:  # NEGATE, a negated category: any character
            return _ANY
    first = _chars(chars, nocase)
    return None if first is None else (first[0], first[1] or other)


def _chars(chars: set[str], nocase: bool) -> First:
    """ASCII characters and whether any is not ASCII; ignoring case, every case of each (and, for
    Unicode, characters such as the Kelvin sign that fold to an ASCII letter: not ASCII). A
    non-ASCII character ignoring case may match an ASCII one (U+0130 matches i): any character."""
    if nocase:
        if any(c >= _OTHER for c in chars):
            return _ANY
        chars = chars | {c.swapcase() for c in chars}
    ascii_chars = frozenset(c for c in chars if c < _OTHER)
    return ascii_chars, nocase or any(c >= _OTHER for c in chars)
