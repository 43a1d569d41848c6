"""Liquid templates (python-liquid 2) rendered in a sandbox.

A template is written by a user and rendered for every event, so it must not be able to
hang a worker, exhaust memory or reach Python. The sandbox:

- reads data only through Liquid's item lookup (``obj[key]``), never attributes, so
  ``{{ x.__class__ }}`` is undefined and renders empty;
- has no ``include``, ``render`` or ``tablerow`` tags (no file system, no HTML tables);
- limits loop iterations (nested loops multiply), output bytes (``capture`` included),
  the size of assigned variables, context nesting and the template's length;
- refuses ranges and lists longer than the loop limit in filters, and ``join`` or
  ``replace`` calls that would build more than the variable size limit, since one such
  call could otherwise run for minutes;
- checks a render deadline on every loop iteration and filter call (everything else a
  template does is bounded by its length).

Undefined variables render empty. Errors are :class:`TemplateError` with the line and
column when Liquid knows them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Mapping
from io import StringIO
from time import perf_counter
from typing import Any, TextIO

from liquid import BoundTemplate, Environment, Mode, RenderContext, Undefined
from liquid.builtin.expressions import LoopExpression
from liquid.builtin.tags.for_tag import ForNode, ForTag
from liquid.exceptions import (
    ContextDepthError,
    LiquidError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    ResourceLimitError,
)
from liquid.stream import TokenStream
from liquid.token import Token

from sluice.engine.filters import FILTERS

DEFAULT_LOOP_ITERATION_LIMIT = 10_000
DEFAULT_OUTPUT_LIMIT = 64 * 1024  # bytes
DEFAULT_TIME_LIMIT = 0.1  # seconds
DEFAULT_LOCAL_NAMESPACE_LIMIT = 1024 * 1024  # bytes, as sys.getsizeof counts them
DEFAULT_CONTEXT_DEPTH_LIMIT = 30
DEFAULT_SOURCE_LIMIT = 64 * 1024  # characters

_REMOVED_TAGS = ("include", "render", "tablerow")
# Filters that walk a whole list (or, given a range literal, build one): their cost grows
# with its length (uniq: squared). Only these are guarded; upcase & co. run unwrapped.
_ARRAY_FILTERS = frozenset(
    {
        *FILTERS,
        "slice",
        "compact",
        "concat",
        "find",
        "find_index",
        "has",
        "join",
        "map",
        "reject",
        "reverse",
        "sort",
        "sort_natural",
        "sum",
        "uniq",
        "where",
    }
)


class TemplateError(ValueError):
    """A template that does not parse, or that failed or hit a limit while rendering."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None):
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(message + where)
        self.message = message
        self.line = line
        self.column = column


class _TimeLimitError(ResourceLimitError):
    pass


class _SizeLimitError(ResourceLimitError):
    pass


class _Output(StringIO):
    """The render buffer: counts UTF-8 bytes against the output limit."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.size = 0

    def write(self, text: str) -> int:
        if text:
            self.size += len(text) if text.isascii() else len(text.encode())
            if self.size > self.limit:
                raise OutputStreamLimitError("output stream limit reached", token=None)
        return super().write(text)


class _SandboxContext(RenderContext):
    # Set by CompiledTemplate.render. Only the (removed) render tag copies contexts, so
    # the class default is never what a render runs with.
    deadline: float = math.inf

    def filter(self, name: str, token: Token | None) -> Callable[..., object]:
        if perf_counter() > self.deadline:
            raise _TimeLimitError("render time limit reached", token=token)
        return super().filter(name, token)

    def get_buffer(self, buf: TextIO | None = None) -> StringIO:
        # ``capture`` writes here: its text counts against the same output limit.
        limit = self.env.output_stream_limit or DEFAULT_OUTPUT_LIMIT
        carry = buf.size if isinstance(buf, _Output) else 0
        return _Output(limit - carry)


def _until(items: Iterator[object], deadline: float) -> Iterator[object]:
    for item in items:
        if perf_counter() > deadline:
            raise _TimeLimitError("render time limit reached", token=None)
        yield item


class _BoundedLoop(LoopExpression):
    """A ``for`` expression that checks the deadline per iteration and never builds a
    huge reversed list (Liquid's own limit is checked only after ``reversed`` ran)."""

    __slots__ = ()

    def evaluate(self, context: RenderContext) -> tuple[Iterator[object], int]:
        items, length = super().evaluate(context)
        deadline = context.deadline if isinstance(context, _SandboxContext) else math.inf
        return _until(items, deadline), length

    def _slice(
        self,
        it: Iterator[object],
        length: int,
        context: RenderContext,
        *,
        limit: int | None,
        offset: int | str | None,
    ) -> tuple[Iterator[object], int]:
        cap = context.env.loop_iteration_limit
        if self.reversed and cap is not None:
            if offset == "continue":
                start = context.stopindex(f"{self.identifier}-{self.iterable}")
            else:
                start = int(offset or 0)
            start = max(start, 0)
            stop = length if limit is None else min(limit + start, length)
            if stop - start > cap:
                raise LoopIterationLimitError("loop iteration limit reached", token=self.token)
        return super()._slice(it, length, context, limit=limit, offset=offset)


class _ForTag(ForTag):
    def parse(self, stream: TokenStream) -> ForNode:
        node = super().parse(stream)
        assert isinstance(node, ForNode)
        loop = node.expression
        node.expression = _BoundedLoop(
            loop.token,
            loop.identifier,
            loop.iterable,
            limit=loop.limit,
            offset=loop.offset,
            reversed_=loop.reversed,
            cols=loop.cols,
        )
        return node


def _guard(
    name: str, func: Callable[..., Any], max_items: int, max_chars: int
) -> Callable[..., Any]:
    """``func`` refusing inputs whose size would make one call run away."""

    def too_long(value: object) -> bool:
        return isinstance(value, (list, tuple, range)) and len(value) > max_items

    @functools.wraps(func)  # keeps with_environment & co., which Liquid reads
    def guarded(left: object, *args: object, **kwargs: object) -> Any:
        if too_long(left) or any(too_long(arg) for arg in args):
            raise _SizeLimitError(
                f"{name}: more than {max_items} items (the loop iteration limit)", token=None
            )
        if name == "join" and isinstance(left, (list, tuple)):
            separator = str(args[0]) if args else " "
            if len(separator) * len(left) > max_chars:
                raise _SizeLimitError(
                    f"join: would build more than {max_chars} characters", token=None
                )
        elif name == "replace" and isinstance(left, str) and args:
            old = str(args[0])
            new = str(args[1]) if len(args) > 1 else ""
            count = left.count(old) if old else len(left) + 1
            if count * len(new) > max_chars:
                raise _SizeLimitError(
                    f"replace: would build more than {max_chars} characters", token=None
                )
        return func(left, *args, **kwargs)

    return guarded


class TemplateEngine:
    """A sandboxed Liquid environment; templates compile once and render many times."""

    def __init__(
        self,
        *,
        loop_iteration_limit: int = DEFAULT_LOOP_ITERATION_LIMIT,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        time_limit: float = DEFAULT_TIME_LIMIT,
        local_namespace_limit: int = DEFAULT_LOCAL_NAMESPACE_LIMIT,
        context_depth_limit: int = DEFAULT_CONTEXT_DEPTH_LIMIT,
        source_limit: int = DEFAULT_SOURCE_LIMIT,
    ) -> None:
        limits = (loop_iteration_limit, output_limit, time_limit, local_namespace_limit)
        if min(*limits, context_depth_limit, source_limit) <= 0:
            raise ValueError("template limits must be positive")
        self.loop_iteration_limit = loop_iteration_limit
        self.output_limit = output_limit
        self.time_limit = time_limit
        self.local_namespace_limit = local_namespace_limit
        self.context_depth_limit = context_depth_limit
        self.source_limit = source_limit
        self.environment = self._environment()

    def _environment(self) -> Environment:
        engine = self

        # Liquid reads its limits from class attributes; each engine gets its own class.
        class SandboxEnvironment(Environment):
            loop_iteration_limit = engine.loop_iteration_limit
            output_stream_limit = engine.output_limit
            local_namespace_limit = engine.local_namespace_limit
            context_depth_limit = engine.context_depth_limit

        env = SandboxEnvironment(
            tolerance=Mode.STRICT, undefined=Undefined, strict_filters=True, autoescape=False
        )
        for tag in _REMOVED_TAGS:
            del env.tags[tag]
        env.add_tag(_ForTag)
        env.filters.update(FILTERS)
        for name in _ARRAY_FILTERS | {"replace"}:
            env.filters[name] = _guard(
                name, env.filters[name], self.loop_iteration_limit, self.local_namespace_limit
            )
        return env

    def compile(self, source: str) -> CompiledTemplate:
        """Parse ``source``; TemplateError for a syntax error or an unknown filter."""
        if not isinstance(source, str):
            raise TemplateError("a template must be text")
        if len(source) > self.source_limit:
            raise TemplateError(
                f"the template is {len(source)} characters long; the limit is {self.source_limit}"
            )
        try:
            template = self.environment.from_string(source)
        except LiquidError as exc:
            raise self.error(exc) from exc
        # Liquid finds an unknown filter only when rendering reaches it: look now.
        used = template.analyze(include_partials=False).filters
        for name, spans in used.items():
            if name not in self.environment.filters:
                line, column = spans[0].line_col(source)
                raise TemplateError(f"unknown filter {name!r}", line=line, column=column + 1)
        return CompiledTemplate(self, source, template)

    def error(self, exc: LiquidError) -> TemplateError:
        """The TemplateError for a Liquid error: a message for users and its position."""
        if isinstance(exc, _TimeLimitError):
            message = (
                f"time limit reached: rendering took longer than {self.time_limit * 1000:g} ms"
            )
        elif isinstance(exc, LoopIterationLimitError):
            message = (
                f"loop limit reached: loops may run at most {self.loop_iteration_limit} "
                "iterations (nested loops multiply)"
            )
        elif isinstance(exc, OutputStreamLimitError):
            message = (
                f"output limit reached: a template may write at most {self.output_limit} bytes"
            )
        elif isinstance(exc, LocalNamespaceLimitError):
            message = (
                "variable size limit reached: assigned values may hold at most "
                f"{self.local_namespace_limit} bytes"
            )
        elif isinstance(exc, ContextDepthError):
            message = "nesting limit reached"
        else:
            message = str(exc.message) if exc.message is not None else type(exc).__name__
        try:
            where = exc.context()
        except ValueError:
            where = None
        if where is None:
            return TemplateError(message)
        return TemplateError(message, line=where[0], column=where[1] + 1)


class CompiledTemplate:
    """A parsed template bound to its engine's sandbox."""

    __slots__ = ("_engine", "_template", "source")

    def __init__(self, engine: TemplateEngine, source: str, template: BoundTemplate) -> None:
        self._engine = engine
        self._template = template
        self.source = source

    def render(self, context: Mapping[str, Any]) -> str:
        """The text for ``context``; TemplateError on a render error or a limit breach."""
        engine = self._engine
        deadline = perf_counter() + engine.time_limit
        render_context = _SandboxContext(self._template, globals=context)
        render_context.deadline = deadline
        output = _Output(engine.output_limit)
        try:
            self._template.render_with_context(render_context, output)
        except LiquidError as exc:
            raise engine.error(exc) from exc
        except RecursionError as exc:
            raise TemplateError("nesting limit reached") from exc
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
            # A filter failing in a way Liquid does not wrap is still this template's fault.
            raise TemplateError(f"render failed: {type(exc).__name__}: {exc}") from exc
        return output.getvalue()


@functools.cache
def default_engine() -> TemplateEngine:
    """The engine with the default limits, shared by the process."""
    return TemplateEngine()
