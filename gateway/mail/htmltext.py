"""HTML <-> plain text, one implementation for both directions of mail.

`html_to_text` gives the text of an HTML-only incoming mail (parse: what the assistant, the
store and HubSpot read) and the plain-text alternative of an outgoing reply (render). It keeps
what a reader needs: paragraphs as blank-line separated blocks, `<br>` as a line break, list
items as `- ` or `1. `, quotes as `> ` lines (RFC 3676 §4.5 style), links as `text <url>`,
images by their alt text, `<pre>` as written; scripts, styles and the head are dropped.
The stdlib HTMLParser is lenient (it never raises on bad markup) and linear in the input,
which is bounded by MAX_HTML_CHARS.

`text_to_html` is the other direction for plain text we send as HTML (a signature, a text body).
Pure functions, no I/O.
"""

from __future__ import annotations

import html as htmlmod
import re
from html.parser import HTMLParser

__all__ = ["MAX_HTML_CHARS", "html_to_text", "text_to_html"]

MAX_HTML_CHARS = 2_000_000  # characters of HTML read; the rest is ignored

# As a browser shows them: elements with a margin are paragraphs (a blank line around them),
# the others only start a new line (`<div>` is how webmail editors write a line).
PARAGRAPH_TAGS = frozenset("p table ul ol dl h1 h2 h3 h4 h5 h6 hr blockquote pre".split())
LINE_TAGS = frozenset(
    "div tr thead tbody tfoot dt dd section article header footer address center title".split()
)
# Elements whose content is never text for a reader.
SKIPPED_TAGS = frozenset({"script", "style", "head", "template", "noscript"})
_VOID_TAGS = frozenset({"br", "img", "hr"})


class _TextRenderer(HTMLParser):
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

    def _line(self) -> None:
        if "".join(self.current).strip():
            self._flush()
        else:
            self.current = []

    def _block(self) -> None:
        self._line()
        if self.lines and self.lines[-1].strip(" >"):
            self.lines.append(("> " * self.quote).rstrip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in SKIPPED_TAGS:
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
        elif tag in ("td", "th"):
            if "".join(self.current).strip():
                self.current.append(" ")  # cells of a row stay on one line, apart
        elif tag == "a":
            self.links.append(a.get("href"))
        elif tag == "img" and a.get("alt"):
            self.current.append(f"[{a['alt']}]")
        elif tag in LINE_TAGS:
            self._line()
        elif tag in PARAGRAPH_TAGS:
            self._block()
            if tag == "blockquote":
                self.quote += 1
            elif tag == "pre":
                self.pre += 1
            elif tag == "ol":
                start = a.get("start") or ""
                self.ol.append(int(start) - 1 if start.isdigit() else 0)
            elif tag == "hr":
                self.lines.append("----")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag == "a" and self.links:
            href = self.links.pop()
            shown = "".join(self.current)
            if href and href.startswith(("http://", "https://")) and href not in shown:
                self.current.append(f" <{href}>")
        elif tag == "li":
            self._flush()
        elif tag in LINE_TAGS:
            self._line()
        elif tag in PARAGRAPH_TAGS:
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
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            for i, part in enumerate(data.split("\n")):
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
    """Readable plain text of an HTML body (see the module docstring for what is kept).

    Shape: lines joined by "\\n", no leading/trailing blank lines, no runs of blank lines.
    Never raises: should the parser fail, the tags are stripped and entities unescaped.
    """
    html = (html or "")[:MAX_HTML_CHARS]
    parser = _TextRenderer()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient; this is a last resort
        return htmlmod.unescape(re.sub(r"<[^>]*>", " ", html)).strip()
    return parser.text()


def text_to_html(text: str) -> str:
    """Plain text (a signature) as escaped HTML that keeps its line breaks: one `<p>` per
    paragraph (blank-line separated), `<br>` between its lines; "" for blank text."""
    if not text or not text.strip():
        return ""
    out = []
    for para in re.split(r"\n\s*\n", text.strip("\n")):
        lines = [htmlmod.escape(line) for line in para.split("\n")]
        out.append("<p>" + "<br>\n".join(lines) + "</p>")
    return "\n".join(out)
