"""A chapter's title, and its text without the headings that say it.

The title comes from the navigation when it names the chapter, else from the chapter's first heading (h1 to
h3, with a second heading right after it: "Chapter I" then "Down the Rabbit-Hole"). Headings that say the
title are left out of the text: the pipeline may speak the title first, and it should not be heard twice.
"""

from __future__ import annotations

import re

from .xhtml import Block

_WORDS = re.compile(r"[^\w]+")
_LOOK = 5  # how many blocks into a chapter its title heading may be (after an epigraph, a part label)


def join_titles(titles: list[str]) -> str:
    """Several titles for one place ("Part I", "Chapter 1") as one: "Part I. Chapter 1"."""
    out = ""
    for title in dict.fromkeys(t for t in titles if t):
        out = title if not out else f"{out}{'' if out[-1] in '.!?:' else '.'} {title}"
    return out


def _plain(text: str) -> str:
    return _WORDS.sub(" ", text.lower()).strip()


def _says(heading: str, title: str) -> bool:
    h, t = _plain(heading), _plain(title)
    return bool(h) and (h in t or t in h)


def titled(blocks: list[Block], nav_title: str) -> tuple[str, list[Block]]:
    """(title, the blocks to speak)."""
    if nav_title:
        lead = 0
        while lead < min(len(blocks), 3) and blocks[lead].heading and _says(blocks[lead].text, nav_title):
            lead += 1
        return nav_title, blocks[lead:]
    for i, block in enumerate(blocks[:_LOOK]):
        if 1 <= block.heading <= 3:
            end = i + 1
            if end < len(blocks) and 1 <= blocks[end].heading <= 3:
                end += 1
            title = join_titles([" ".join(b.text.split()) for b in blocks[i:end]])
            return title, blocks[:i] + blocks[end:]
    return "", blocks


def speakable(blocks: list[Block]) -> str:
    return "\n\n".join(b.text for b in blocks)
