"""Tool-call parsers for the raw text local models write, one per native format."""

from toolchat.backends.parsers.base import ParsedCall, StreamParser
from toolchat.backends.parsers.formats import FORMATS, detect_format, make_parser

__all__ = ["FORMATS", "ParsedCall", "StreamParser", "detect_format", "make_parser"]
