"""The knowledge backend: Markdown articles, split into sections, ranked with BM25 (bm25s).

An article is a Markdown file: an optional front matter block (`url: …`), a `# Title`, then
`## Section` headings. Each section is a retrieval unit; the reply quotes the best one and names
its article (with its link when there is one).

BM25 scores rank sections but have no fixed scale, so the answer threshold uses a confidence
in 0..1: the IDF-weighted share of the question's informative words that the best section
contains (words the articles never use count as missing, weighted with the median IDF; the
customer's own name is not part of the question). "How do I
reset my password?" is fully covered by the password article; "Can I pay in bitcoin?" is not
covered by the billing article for the word that matters, and goes to a person.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import PurePath

from gateway.pipeline.assistant.decision import ConversationView, Decision

log = logging.getLogger(__name__)

NO_CONFIDENT_ANSWER = "no confident answer"

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
# Words that carry no topic: English function words, greetings and mail politeness.
STOPWORDS = frozenset(
    """a about above after again all am an and any are as at be because been before being
    below between both but by can cannot could did do does doing don down during each few for
    from further had has have having he her here hers him his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours out over
    own same she should so some still such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours yourself also get got please thank thanks
    hello hi hey dear regards best kind cheers team support help question questions know let
    want need like would could wondering tell anyone someone something way thing things
    sincerely greetings morning afternoon evening sir madam yes ok okay much many via able one
    re fwd fw i'm i've can't don't it's""".split()
)


def stem(word: str) -> str:
    """A deliberately small English stemmer: reset/resetting and invoice/invoices meet."""
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            if suffix == "es" and not word.endswith(("ches", "shes", "sses", "xes", "zes")):
                continue
            if suffix == "s" and word.endswith("ss"):
                continue
            word = word[: -len(suffix)] + repl
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # resett -> reset
            break
    return word


def tokenize(text: str) -> list[str]:
    words = (w.casefold() for w in _TOKEN.findall(text or ""))
    return [stem(w) for w in words if w not in STOPWORDS and len(w) > 1]


@dataclass(frozen=True)
class Section:
    article: str  # the article's title
    heading: str  # the section heading ("" for the text before the first ##)
    body: str  # the section's Markdown
    path: str
    url: str = ""

    @property
    def title(self) -> str:
        return f"{self.article} › {self.heading}" if self.heading else self.article


@dataclass(frozen=True)
class Hit:
    section: Section
    score: float  # BM25
    confidence: float  # 0..1, see the module docstring


_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


def parse_article(text: str, path: str = "") -> list[Section]:
    meta: dict[str, str] = {}
    match = _FRONT.match(text)
    if match:
        for line in match.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip().strip("\"'")
        text = text[match.end() :]
    title = meta.get("title", "")
    sections: list[Section] = []
    heading, lines = "", list[str]()

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            sections.append(Section(title, heading, body, path, meta.get("url", "")))

    for line in text.splitlines():
        if line.startswith("# ") and not title:
            title = line[2:].strip()
            continue
        if line.startswith("## "):
            flush()
            heading, lines = line[3:].strip(), []
            continue
        lines.append(line)
    flush()
    if not title:
        title = PurePath(path).stem.replace("-", " ").replace("_", " ").capitalize()
    return [Section(title, s.heading, s.body, s.path, s.url) for s in sections]


class KnowledgeBase:
    def __init__(self, sections: list[Section]):
        import bm25s

        self.sections = sections
        # the heading says what a section is about: count it twice (the article title, shared
        # by all its sections, once)
        self._docs = [tokenize(f"{s.article} {s.heading} {s.heading} {s.body}") for s in sections]
        n = len(self._docs)
        df: dict[str, int] = {}
        for doc in self._docs:
            for tok in set(doc):
                df[tok] = df.get(tok, 0) + 1
        self._idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        idfs = sorted(self._idf.values())
        self._unknown_idf = idfs[len(idfs) // 2] if idfs else 1.0
        self._bm25 = None
        if n:
            self._bm25 = bm25s.BM25()
            self._bm25.index(self._docs, show_progress=False)

    def confidence(self, query: list[str], section_index: int) -> float:
        terms = set(query)
        if not terms:
            return 0.0
        doc = set(self._docs[section_index])
        total = sum(self._idf.get(t, self._unknown_idf) for t in terms)
        covered = sum(self._idf[t] for t in terms if t in doc)
        return covered / total if total else 0.0

    def search(self, text: str, k: int = 3, *, ignore: frozenset[str] = frozenset()) -> list[Hit]:
        query = [t for t in tokenize(text) if t not in ignore]
        if self._bm25 is None or not query:
            return []
        known = list(dict.fromkeys(t for t in query if t in self._idf))
        if not known:
            return []
        scores = self._bm25.get_scores(known)
        ranked = sorted(range(len(scores)), key=lambda i: -float(scores[i]))[:k]
        return [
            Hit(self.sections[i], float(scores[i]), self.confidence(query, i))
            for i in ranked
            if scores[i] > 0
        ]


def question_text(conv: ConversationView) -> str:
    pending = conv.pending
    subject = pending[-1].subject if pending else conv.subject
    return "\n".join([subject or "", *(m.text for m in pending)])


def compose_reply(hit: Hit, customer_name: str = "") -> str:
    s = hit.section
    greeting = f"Hello {customer_name.split()[0]}," if customer_name.strip() else "Hello,"
    source = f"[{s.article}]({s.url})" if s.url else f"“{s.article}”"
    return (
        f"{greeting}\n\nthank you for your message. Our help article {source} says:\n\n"
        + (f"**{s.heading}**\n\n" if s.heading else "")
        + s.body.strip()
        + "\n\nIf this does not solve your problem, just reply to this email and a person from "
        "our team will take over."
    )


class KnowledgeBackend:
    """Answers from the best article section when it clears the confidence threshold."""

    name = "knowledge"

    def __init__(self, kb: KnowledgeBase, threshold: float):
        self.kb = kb
        self.threshold = threshold

    async def decide(self, conv: ConversationView) -> Decision:
        names = " ".join(
            [conv.customer_name, conv.customer_email.split("@")[0]]
            + [m.sender_name for m in conv.pending]
        )
        hits = self.kb.search(question_text(conv), ignore=frozenset(tokenize(names)))
        if not hits:
            return Decision.escalate(NO_CONFIDENT_ANSWER, confidence=0.0, source=self.name)
        best = max(hits[:3], key=lambda h: (h.confidence, h.score))
        if best.confidence < self.threshold:
            return Decision.escalate(
                f"{NO_CONFIDENT_ANSWER} (best match “{best.section.title}”, "
                f"confidence {best.confidence:.2f} < {self.threshold:.2f})",
                confidence=best.confidence,
                source=best.section.title,
            )
        return Decision.reply(
            compose_reply(best, conv.customer_name),
            confidence=best.confidence,
            source=best.section.title,
        )
