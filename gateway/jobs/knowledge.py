"""Reading the knowledge articles from disk for the assistant (pipeline/assistant/knowledge.py
ranks them; reading files is I/O, so it happens here, not in the pipeline).

An article is a Markdown file under `[assistant] knowledge_dir`, searched recursively
(`**/*.md`); an unreadable file is skipped with a warning, never the whole knowledge base.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.pipeline.assistant.knowledge import KnowledgeBase, Section, parse_article

log = logging.getLogger(__name__)


def load_articles(folder: Path) -> list[Section]:
    """Every section of every `*.md` article below `folder`, articles in path order."""
    sections: list[Section] = []
    for path in sorted(Path(folder).glob("**/*.md")):
        try:
            sections.extend(parse_article(path.read_text(encoding="utf-8"), str(path)))
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("knowledge article %s skipped: %s", path, exc)
    return sections


def knowledge_base(folder: Path) -> KnowledgeBase:
    """The BM25 index over the articles of `folder`."""
    return KnowledgeBase(load_articles(folder))
