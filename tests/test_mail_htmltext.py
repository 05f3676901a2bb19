"""html_to_text / text_to_html: the one HTML<->text codec of incoming and outgoing mail.

It replaced two renderers (parse's and render's); each test names the old behaviour it keeps.
"""

from __future__ import annotations

from gateway.mail.htmltext import MAX_HTML_CHARS, html_to_text, text_to_html


def test_scripts_styles_head_and_noscript_are_dropped() -> None:
    # parse: script, style, head, noscript, template never reach the text
    text = html_to_text(
        "<html><head><title>t</title><style>p{}</style></head><body><p>Hello</p>"
        "<script>x()</script><noscript>enable js</noscript><template>tpl</template></body></html>"
    )
    assert text == "Hello"


def test_paragraphs_are_blank_line_separated_and_br_is_a_line_break() -> None:
    # both: paragraphs apart by one blank line, <br> a line break, no runs of blank lines
    assert html_to_text("<p>one</p><p>two</p>") == "one\n\ntwo"
    assert html_to_text("<p>a<br>b</p>") == "a\nb"
    assert html_to_text("Hi,<br><br>the amount") == "Hi,\n\nthe amount"
    assert html_to_text("<p>a</p><p></p><p></p><p>b</p>") == "a\n\nb"


def test_divs_and_sections_start_a_line() -> None:
    # parse: webmail editors write one <div> per line; sections and the like break the line
    assert html_to_text('<div dir="ltr">Hi<div>second line</div></div>') == "Hi\nsecond line"
    assert html_to_text("<div>a</div><div><br></div><div>b</div>") == "a\n\nb"
    sections = "<section>a</section><article>b</article><footer>c</footer>"
    assert html_to_text(sections) == "a\nb\nc"
    assert html_to_text("<dl><dt>term</dt><dd>meaning</dd></dl>") == "term\nmeaning"


def test_quotes_become_prefixed_lines() -> None:
    # both: blockquote -> "> " lines; render: the quote's trailing blank lines stay inside it
    assert html_to_text("<blockquote><p>quoted</p></blockquote><p>new</p>") == "> quoted\n\nnew"
    nested = html_to_text("<blockquote>a<blockquote>b</blockquote></blockquote>c")
    assert nested == "> a\n>\n> > b\n\nc"


def test_lists_links_images_rules_and_pre() -> None:
    # parse and render: "- " items, [alt] for images; render: numbered <ol>, links, hr, <pre>
    assert html_to_text("<ul><li>one</li><li>two</li></ul>") == "- one\n- two"
    assert html_to_text('<ol start="3"><li>c</li><li>d</li></ol>') == "3. c\n4. d"
    assert html_to_text('<p><a href="https://x.test/a">the page</a></p>') == (
        "the page <https://x.test/a>"
    )
    assert html_to_text('<a href="https://x.test">https://x.test</a>') == "https://x.test"
    assert html_to_text('<a href="javascript:x()">y</a>') == "y"
    assert html_to_text('<p>see <img src="cid:1" alt="chart"></p>') == "see [chart]"
    assert html_to_text("<p>a</p><hr><p>b</p>") == "a\n\n----\n\nb"
    assert html_to_text("<pre>  x = 1\n  y = 2</pre>") == "  x = 1\n  y = 2"


def test_table_cells_stay_apart() -> None:
    assert html_to_text("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>") == (
        "a b\nc"
    )


def test_entities_nbsp_and_whitespace() -> None:
    assert html_to_text("<p>caf&eacute;&nbsp;&amp;\n   more</p>") == "café & more"


def test_input_is_bounded_and_never_raises() -> None:
    big = "<p>" + "x" * (MAX_HTML_CHARS + 10) + "</p>"
    assert len(html_to_text(big)) == MAX_HTML_CHARS - 3
    for junk in ("", "<", "<<<>>>", "<p", "</p></div></blockquote>", "<a href=>x", "\x00<b>"):
        assert isinstance(html_to_text(junk), str)


def test_text_to_html_keeps_line_breaks_and_escapes() -> None:
    assert text_to_html("Anna <a@b.test>\nSupport\n\nAcme & Co") == (
        "<p>Anna &lt;a@b.test&gt;<br>\nSupport</p>\n<p>Acme &amp; Co</p>"
    )
    assert text_to_html("  \n") == ""
    assert html_to_text(text_to_html("a\nb\n\nc")) == "a\nb\n\nc"
