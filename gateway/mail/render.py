"""Bodies of outgoing mail: Markdown or HubSpot rich text in, sanitised HTML and plain text out.

Pure functions. Every HTML that leaves the gateway went through `sanitise_html` (nh3, a small
allow-list): a rep's pasted HTML or a Markdown body with raw HTML cannot smuggle scripts,
event handlers, styles or `javascript:` links into the customer's mail client.
"""

from __future__ import annotations

import markdown as markdownlib
import nh3

from gateway.mail.htmltext import html_to_text, text_to_html

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


def render_body(body: str, *, body_format: str, text: str = "") -> tuple[str, str]:
    """(text, html) of a reply body: body_format is "markdown" (the assistant), "html"
    (HubSpot rich text, from a rep) or "text". For "html", `text` is the text part as the
    author wrote it (HubSpot's message `text`: paragraphs and line breaks kept); "" derives
    the text part from the HTML."""
    if body_format == "markdown":
        html = markdown_to_html(body)
        return _markdown_text(body), html
    if body_format == "html":
        html = sanitise_html(body)
        plain = _plain(text)
        return (plain or html_to_text(html)), html
    if body_format == "text":
        return (body or "").strip("\n"), text_to_html(body)
    raise ValueError(f"unknown body format {body_format!r} (markdown, html or text)")


def _plain(text: str) -> str:
    """An author's plain text: line ends normalised, trailing spaces and outer blank lines
    dropped, paragraphs (blank lines) and line breaks kept."""
    lines = (text or "")[:MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _markdown_text(body: str) -> str:
    """Markdown is already readable as text; only normalise line ends and strip raw HTML."""
    text = (body or "").replace("\r\n", "\n").replace("\r", "\n")
    if "<" in text:
        text = html_to_text(markdown_to_html(text))
    return text.strip("\n")
