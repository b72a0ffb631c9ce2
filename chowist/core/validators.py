"""Validators shared by the apps' models."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# Control characters (CR, LF, NUL, ESC...) and the Unicode line and paragraph separators.
_NOT_ON_ONE_LINE = frozenset({"Cc", "Zl", "Zp"})


def _breaks_a_line(char: str) -> bool:
    return unicodedata.category(char) in _NOT_ON_ONE_LINE


@deconstructible
class SingleLineValidator:
    """A one-line value (a name, an address) holds no control character.

    Such values end up in places where a line break means something else: an e-mail header (a place's name is in
    the review confirmation's subject; CR LF there made every send fail with BadHeaderError), a log line, a CSV.
    """

    message = "Must be a single line, without control characters."
    code = "single_line"

    def __call__(self, value: str) -> None:
        if any(_breaks_a_line(char) for char in str(value)):
            raise ValidationError(self.message, code=self.code)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SingleLineValidator)

    def __hash__(self) -> int:
        return hash(self.code)


validate_single_line = SingleLineValidator()


def single_line(text: str) -> str:
    """`text` with every run of whitespace and control characters made one space: safe in a header."""
    return " ".join("".join(" " if _breaks_a_line(char) else char for char in text).split())
