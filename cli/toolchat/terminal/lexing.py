"""Pygments' own lexing, at about twice the speed for the regex lexers most code is written in.

A Pygments `RegexLexer` tries the rules of its current state one by one at each position, one
Python call per rule: Python's root state has 54, so a name costs some 50 failed calls (issue 23's
measure: lexing alone cost the REPL as much as `ask`'s whole stream). Here each run of a state's
rules is joined into one alternation, `(?:rule1)()|(?:rule2)()|...`, which Python's regex engine
tries in the same order and at the same position, in C: the first rule that matches wins, as in
Pygments, and the empty group after it, the last group to close (`lastindex`), says which rule it
was. Nothing stands before a rule's own pattern, so the engine skips at once a rule whose first
character cannot match. Everything else is the lexer's: its rule tables
(`RegexLexerMeta.get_tokendefs` and `process_tokendef`, public methods), its token types and its
callbacks, which get the rule's own match, so the tokens are Pygments' tokens (tests/test_lexing.py
compares them over every language a code block names often).

A rule is left on its own where joining could change what it matches: a backreference or a
conditional counts groups, a named group may be named again by another rule, and flags set for
the whole pattern must stay at its start (`(?i)` is scoped to its own rule instead). Lexers that
are not plain regex lexers (their own `get_tokens_unprocessed`, token variants) lex as Pygments
does. A state's alternation is compiled when the lexer first enters it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

Token = tuple[int, Any, str]  # (position, token type, text), as Pygments' get_tokens_unprocessed
Rule = tuple[Callable[..., Any], Any, Any]  # (match, action, new state) as Pygments processes them
Segment = tuple[Callable[..., Any], list[Rule | None] | None, Rule | None]  # (match, rules by group, or its rule)

_ALONE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(|\(\?P<")  # group numbers or names that joining would change
_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")  # flags for the whole pattern, at its start


def tokenizer(lexer: Any) -> Callable[[str], Iterator[Token]]:
    """What `lexer.get_tokens_unprocessed` does, for a text lexed from the root state."""
    from pygments.lexer import RegexLexer

    kind = type(lexer)
    plain = isinstance(lexer, RegexLexer) and kind.get_tokens_unprocessed is RegexLexer.get_tokens_unprocessed
    if not plain or getattr(kind, "token_variants", False):
        return lexer.get_tokens_unprocessed
    states = _States(kind.process_tokendef("toolchat", kind.get_tokendefs()), kind.flags)
    return lambda text: _lex(lexer, states, text)


class _States(dict[str, list[Segment]]):
    """Each state's rules as segments, joined the first time the state is looked up."""

    def __init__(self, rules: dict[str, list[Rule]], flags: int) -> None:
        super().__init__()
        self.rules, self.flags = rules, flags
        self.plain = re.compile("", flags).flags  # what a rule compiled with the lexer's flags alone has

    def __missing__(self, state: str) -> list[Segment]:
        segments: list[Segment] = []
        run: list[Rule] = []
        for rule in self.rules[state]:
            if self._joinable(rule):
                run.append(rule)
                continue
            segments += self._joined(run)
            segments.append((rule[0], None, rule))
            run = []
        segments += self._joined(run)
        self[state] = segments
        return segments

    def _joinable(self, rule: Rule) -> bool:
        pattern = getattr(rule[0], "__self__", None)
        if not isinstance(pattern, re.Pattern) or not isinstance(pattern.pattern, str):
            return False
        if _ALONE.search(pattern.pattern):
            return False
        return not pattern.pattern or pattern.flags == self.plain or bool(_FLAGS.match(pattern.pattern))

    def _joined(self, run: list[Rule]) -> list[Segment]:
        """One segment for `run`, or one for each rule where the joined pattern does not compile."""
        if len(run) < 2:
            return [(rule[0], None, rule) for rule in run]
        parts, by_group = [], [None]
        for rule in run:
            pattern = rule[0].__self__
            parts.append(f"(?:{_scoped(pattern.pattern)})()")
            by_group += [None] * pattern.groups + [rule]
        try:
            joined = re.compile("|".join(parts), self.flags)
        except re.error:
            return [(rule[0], None, rule) for rule in run]
        return [(joined.match, by_group, None)]


def _scoped(pattern: str) -> str:
    """`pattern` with flags set at its start for the whole of it (`(?i)...`) as flags of a group."""
    flags = _FLAGS.match(pattern)
    return pattern if flags is None else f"(?{flags.group(1)}:{pattern[flags.end() :]})"


def _lex(lexer: Any, states: _States, text: str) -> Iterator[Token]:
    """Pygments' RegexLexer loop over the joined segments (its rules, its order, its transitions)."""
    from pygments.token import Error, Whitespace
    from pygments.token import Token as root

    token_type = type(root)
    stack = ["root"]
    segments = states["root"]
    pos, end = 0, len(text)
    while True:
        for match, by_group, rule in segments:
            found = match(text, pos)
            if found is None:
                continue
            value = found.group()
            if by_group is not None:
                rule = by_group[found.lastindex]  # type: ignore[assignment,index]
            action, new_state = rule[1], rule[2]
            if action is not None:
                if type(action) is token_type:
                    yield pos, action, value
                else:  # a callback gets the rule's own match: its groups are numbered as it wrote them
                    yield from action(lexer, found if by_group is None else rule[0](text, pos))
            pos = found.end()
            if new_state is not None:
                _move(stack, new_state)
                segments = states[stack[-1]]
            break
        else:
            if pos >= end:
                return
            if text[pos] == "\n":  # no rule matches at a line end: back to the root state
                stack = ["root"]
                segments = states["root"]
                yield pos, Whitespace, "\n"
            else:
                yield pos, Error, text[pos]
            pos += 1


def _move(stack: list[str], new_state: Any) -> None:
    """A rule's state transition, as Pygments makes it (the root state is never popped)."""
    if isinstance(new_state, tuple):
        for state in new_state:
            if state == "#pop":
                if len(stack) > 1:
                    stack.pop()
            elif state == "#push":
                stack.append(stack[-1])
            else:
                stack.append(state)
    elif isinstance(new_state, int):
        if abs(new_state) >= len(stack):
            del stack[1:]
        else:
            del stack[new_state:]
    elif new_state == "#push":
        stack.append(stack[-1])
