"""A small document model both renderers read: a title, a period line and blocks in order."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heading:
    """A section heading (一、二、… are part of the text)."""

    text: str


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of running text; `note` prints it smaller (sources, remarks)."""

    text: str
    note: bool = False


@dataclass(frozen=True)
class Table:
    """A table with a header row; cells are already formatted text."""

    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    """A PNG picture with its caption, printed `width_cm` wide."""

    caption: str
    png: bytes
    width_cm: float = 15.0


Block = Heading | Paragraph | Table | Figure


@dataclass
class Document:
    """A bulletin: its title, the period and issuing lines under it, and its blocks."""

    title: str
    period: str
    issuer: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        """Append blocks in order."""
        self.blocks.extend(blocks)

    def tables(self) -> list[Table]:
        """The tables, in order."""
        return [b for b in self.blocks if isinstance(b, Table)]
