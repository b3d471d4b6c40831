"""The one Markdown renderer and HTML sanitiser of the site.

Markdown is parsed by markdown-it-py (CommonMark, tables, strikethrough, bare-URL links) with
the dollar-math plugin from mdit-py-plugins: `$...$` and `$$...$$` become
`<span class="math inline">$...$</span>` / `<div class="math block">$$...$$</div>` holding the
formula verbatim (HTML-escaped), so `_`, `*` and `\\\\` inside a formula are never read as
Markdown. The browser typesets those elements with KaTeX (static/js/math.js; templates include
"_katex.html"). A `$` next to a digit or a space is not math, so "$5 and $10" stays text.

The HTML is then cleaned with nh3 against the allow-list of its *context*. There is one
allow-list per context, all in POLICIES below:

- "quiz":     question text, choices, explanations, feedback (instructor bank content)
- "handout":  an assignment's handout.md (instructor pack content)
- "project":  milestone instructions, rubric feedback, deliveries (instructor and student text)
- "notebook": the HTML of a student's executed notebook (hostile; only sanitised, never Markdown)

A new place that shows Markdown calls `render(text, context)` with one of these contexts (or adds
a context here); nothing else in the code base parses Markdown or cleans HTML.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from mdit_py_plugins.dollarmath import dollarmath_plugin

_BASE_TAGS = {
    "p", "br", "hr", "em", "strong", "b", "i", "u", "s", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "table", "thead", "tbody", "tr", "th", "td", "h3", "h4", "h5", "h6", "sub", "sup", "span", "div",
}
_LANGUAGE_CLASS = re.compile(r"^language-[A-Za-z0-9_+-]{1,32}$")
_DATA_IMAGE = ("data:image/png;base64,", "data:image/jpeg;base64,", "data:image/gif;base64,")


@dataclass(frozen=True)
class Policy:
    """What survives sanitising in one context."""

    tags: frozenset
    attributes: dict
    url_schemes: frozenset = frozenset({"http", "https", "mailto"})
    classes: dict = field(default_factory=lambda: {"span": {"math", "inline", "block"}, "div": {"math", "block"}})
    data_images_only: bool = False  # <img src> must be an inline PNG/JPEG/GIF (no network loads)


POLICIES: dict[str, Policy] = {
    "quiz": Policy(
        tags=frozenset(_BASE_TAGS | {"img"}),
        attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}, "code": {"class"},
                    "th": {"align"}, "td": {"align"}},
    ),
    "handout": Policy(
        tags=frozenset(_BASE_TAGS | {"img", "h1", "h2", "dl", "dt", "dd", "details", "summary", "abbr", "acronym"}),
        attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}, "code": {"class"},
                    "th": {"align"}, "td": {"align"}, "h1": {"id"}, "h2": {"id"}, "h3": {"id"}, "h4": {"id"}},
    ),
    "project": Policy(
        tags=frozenset(_BASE_TAGS | {"h1", "h2"}),
        attributes={"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}},
    ),
    "notebook": Policy(
        tags=frozenset({
            "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "h1",
            "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "q", "s", "samp",
            "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
            "tr", "u", "ul", "var",
        }),
        attributes={"*": {"class", "id", "title"}, "a": {"href"}, "img": {"src", "alt", "width", "height"},
                    "td": {"align", "colspan", "rowspan"}, "th": {"align", "colspan", "rowspan"}},
        url_schemes=frozenset({"http", "https", "data"}),
        classes={},
        data_images_only=True,
    ),
}


def _attribute_filter(policy: Policy):
    def check(tag: str, attr: str, value: str):
        if tag == "img" and attr == "src" and policy.data_images_only:
            return value if value.startswith(_DATA_IMAGE) else None
        if tag == "a" and attr == "href" and policy.data_images_only:
            return value if value.startswith(("#", "http://", "https://")) else None
        if tag == "code" and attr == "class" and not policy.data_images_only:
            return value if _LANGUAGE_CLASS.match(value) else None
        return value

    return check


def sanitize(html: str, context: str) -> str:
    """Clean HTML against one context's allow-list (no scripts, no event handlers, no styles)."""
    policy = POLICIES[context]
    return nh3.clean(
        html or "",
        tags=set(policy.tags),
        attributes={k: set(v) for k, v in policy.attributes.items()},
        url_schemes=set(policy.url_schemes),
        allowed_classes={k: set(v) for k, v in policy.classes.items()} or None,
        attribute_filter=_attribute_filter(policy),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _math(content: str, options: dict) -> str:
    delim = "$$" if options.get("display_mode") else "$"
    return escapeHtml(f"{delim}{content}{delim}")


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": True, "typographer": False})
    md.enable(["table", "strikethrough", "linkify"])
    # A `$` before a digit or a space is money, not math ("costs $5 and $10").
    dollarmath_plugin(md, allow_space=False, allow_digits=False, double_inline=True, allow_labels=False,
                      renderer=_math)
    # `$$...$$` inside a paragraph: a <span> (a <div> there would split the paragraph in the browser).
    md.add_render_rule("math_inline_double",
                       lambda self, tokens, idx, options, env: '<span class="math block">'
                       + _math(tokens[idx].content, {"display_mode": True}) + "</span>")
    return md


_MD = _parser()


@lru_cache(maxsize=4096)
def render(text: str, context: str) -> str:
    """Markdown + math to safe HTML for one context. Pure function of its arguments, so cached."""
    if not text:
        return ""
    return sanitize(_MD.render(text), context)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|$~&])")


def escape(text: str) -> str:
    """Text typed by a user, to be quoted inside a Markdown message: shown literally, never as markup."""
    return _MD_SPECIAL.sub(r"\\\1", text or "")


def render_inline(text: str, context: str) -> str:
    """Markdown for a one-line label (a quiz choice, a message): without the <p> wrapper."""
    out = render(text, context).strip()
    if out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return out
