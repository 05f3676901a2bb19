"""Bodies of outgoing mail: Markdown or HubSpot rich text in, sanitised HTML and plain text out.

Pure functions. Every HTML that leaves the gateway went through `sanitise_html` (nh3, a small
allow-list): a rep's pasted HTML or a Markdown body with raw HTML cannot smuggle scripts,
event handlers, styles or `javascript:` links into the customer's mail client.
"""

from __future__ import annotations

import html as htmlmod
import re
from html.parser import HTMLParser

import markdown as markdownlib
import nh3

ALLOWED_TAGS = frozenset(
    "a abbr b blockquote br code div em h1 h2 h3 h4 h5 h6 hr i img li ol p pre s span strong "
    "sub sup table tbody td tfoot th thead tr u ul".split()
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "ol": {"start"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto", "cid"})
MAX_CHARS = 2_000_000


def sanitise_html(html: str) -> str:
    """HTML reduced to the allow-list: no script/style (content dropped), no on* handlers,
    no style attributes, only http(s)/mailto/cid URLs; links get rel="noopener noreferrer"."""
    return nh3.clean(
        (html or "")[:MAX_CHARS],
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()


def markdown_to_html(text: str) -> str:
    """The assistant's Markdown as sanitised HTML (tables, fenced code, hard line breaks)."""
    rendered = markdownlib.markdown(
        (text or "")[:MAX_CHARS], extensions=["extra", "sane_lists", "nl2br"]
    )
    return sanitise_html(rendered)


def text_to_html(text: str) -> str:
    """Plain text (a signature) as escaped HTML that keeps its line breaks."""
    paragraphs = re.split(r"\n\s*\n", (text or "").strip("\n"))
    out = []
    for para in paragraphs:
        lines = [htmlmod.escape(line) for line in para.split("\n")]
        out.append("<p>" + "<br>\n".join(lines) + "</p>")
    return "\n".join(out) if text and text.strip() else ""


class _TextRenderer(HTMLParser):
    BLOCK = frozenset(
        "p div tr table ul ol h1 h2 h3 h4 h5 h6 hr blockquote pre thead tbody tfoot".split()
    )
    SKIP = frozenset({"script", "style", "head", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.quote = 0
        self.pre = 0
        self.skip = 0
        self.links: list[str | None] = []
        self.ol: list[int] = []

    def _flush(self) -> None:
        text = "".join(self.current)
        if not self.pre:
            text = " ".join(text.split())
        self.lines.append(("> " * self.quote + text).rstrip())
        self.current = []

    def _block(self) -> None:
        if self.current and "".join(self.current).strip():
            self._flush()
        elif self.current:
            self.current = []
        if self.lines and self.lines[-1].strip(" >"):
            self.lines.append(("> " * self.quote).rstrip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in self.SKIP:
            self.skip += 1
        elif tag == "br":
            self._flush()
        elif tag == "li":
            if "".join(self.current).strip():
                self._flush()
            self.current = []
            if self.ol:
                self.ol[-1] += 1
                self.current.append(f"{self.ol[-1]}. ")
            else:
                self.current.append("- ")
        elif tag == "a":
            self.links.append(a.get("href"))
        elif tag == "img" and a.get("alt"):
            self.current.append(f"[{a['alt']}]")
        elif tag in self.BLOCK:
            self._block()
            if tag == "blockquote":
                self.quote += 1
            elif tag == "pre":
                self.pre += 1
            elif tag == "ol":
                self.ol.append(
                    int(a.get("start") or 1) - 1 if (a.get("start") or "").isdigit() else 0
                )
            elif tag == "hr":
                self.lines.append("----")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "a" and self.links:
            href = self.links.pop()
            shown = "".join(self.current)
            if href and href.startswith(("http://", "https://")) and href not in shown:
                self.current.append(f" <{href}>")
        elif tag == "li":
            self._flush()
        elif tag in self.BLOCK:
            if tag == "blockquote":
                self._block()
                while self.lines and not self.lines[-1].strip(" >"):
                    self.lines.pop()  # the quote's trailing blank lines stay inside it
                self.quote = max(0, self.quote - 1)
            elif tag == "pre":
                self._flush()
                self.pre = max(0, self.pre - 1)
            elif tag == "ol" and self.ol:
                self.ol.pop()
            self._block()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in {"br", "img", "hr"}:
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            parts = data.split("\n")
            for i, part in enumerate(parts):
                if i:
                    self._flush()
                self.current.append(part)
        else:
            self.current.append(data.replace("\xa0", " "))

    def text(self) -> str:
        if self.current:
            self._flush()
        out: list[str] = []
        for line in self.lines:
            if not line.strip(" >") and (not out or not out[-1].strip(" >")):
                continue  # no runs of blank lines
            out.append(line)
        return "\n".join(out).strip("\n")


def html_to_text(html: str) -> str:
    """The plain-text alternative of an HTML body: paragraphs, lists, quotes as '> ', links
    kept as `text <url>`."""
    parser = _TextRenderer()
    try:
        parser.feed((html or "")[:MAX_CHARS])
        parser.close()
    except Exception:  # HTMLParser is lenient; this is a last resort
        return htmlmod.unescape(re.sub(r"<[^>]*>", " ", html or "")).strip()
    return parser.text()


def render_body(body: str, *, body_format: str) -> tuple[str, str]:
    """(text, html) of a reply body: body_format is "markdown" (the assistant), "html"
    (HubSpot rich text, from a rep) or "text"."""
    if body_format == "markdown":
        html = markdown_to_html(body)
        return _markdown_text(body), html
    if body_format == "html":
        html = sanitise_html(body)
        return html_to_text(html), html
    if body_format == "text":
        return (body or "").strip("\n"), text_to_html(body)
    raise ValueError(f"unknown body format {body_format!r} (markdown, html or text)")


def _markdown_text(body: str) -> str:
    """Markdown is already readable as text; only normalise line ends and strip raw HTML."""
    text = (body or "").replace("\r\n", "\n").replace("\r", "\n")
    if "<" in text:
        text = html_to_text(markdown_to_html(text))
    return text.strip("\n")
