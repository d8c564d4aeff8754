"""Errors the model raises: every one names what was wrong and where (offset, address).

``DumpFormatError``: the file is not a dump we can read (offset + expectation).
``NotDumpedError``: the bytes asked for are not in the dump (first VA not dumped + reason).
``AddressError``: an address the dump does not map at all.
"""

from __future__ import annotations


class DumpError(Exception):
    """Base of every error the model raises on purpose."""


class DumpFormatError(DumpError):
    """The file breaks the layout at ``offset``: ``message`` says what was expected.

    The message is always one line: multi-line texts (construct's errors) are joined with "; ".
    """

    def __init__(self, offset: int | None, message: str) -> None:
        self.offset = offset
        self.message = "; ".join(line.strip() for line in message.splitlines() if line.strip())
        where = f"offset {offset:#x}: " if offset is not None else ""
        super().__init__(f"{where}{self.message}")


class NotDumpedError(DumpError):
    """``va`` is mapped (or asked for) but the dump carries no data for it."""

    def __init__(self, va: int, reason: str, detail: str | None = None) -> None:
        self.va = va
        self.reason = reason
        self.detail = detail
        extra = f" ({detail})" if detail else ""
        super().__init__(f"VA {va:#x} is not dumped: {reason}{extra}")


class AddressError(DumpError):
    """An address that no segment of the dump covers."""

    def __init__(self, address: int, message: str) -> None:
        self.address = address
        super().__init__(message)


class ContextError(DumpError):
    """A context (address space) the dump does not carry was asked for."""

    def __init__(self, context: int, message: str) -> None:
        self.context = context
        super().__init__(message)
