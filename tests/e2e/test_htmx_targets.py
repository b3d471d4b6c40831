"""Issue 28, item 1 (the class): every htmx element on the site has its own target, and that target
exists. A walk of the demo course as student, TA and instructor (every page reachable by links from
the dashboard, GET only) parses each page and each htmx fragment a page polls, and checks:
  * htmx's attribute inheritance is off (base.html's htmx-config), so no element silently takes an
    ancestor's hx-target / hx-swap / hx-sync;
  * every hx-target and hx-include of an element resolves (a CSS selector matches in the page,
    `closest`/`find` match from the element);
  * a fragment's own hx-targets resolve in the page it is swapped into.
HTTP only (the Django test client): it does not depend on a browser or on timing."""
from __future__ import annotations

import io
import json
from collections import deque
from urllib.parse import urldefrag, urlparse

import pytest
import soupsieve as sv
from bs4 import BeautifulSoup
from django.core.management import call_command
from django.test import Client

from courseplatform.courses import demo_data

pytestmark = pytest.mark.django_db

VERBS = ("hx-get", "hx-post", "hx-put", "hx-patch", "hx-delete")
MAX_PAGES = 120


def _describe(el) -> str:
    return f"<{el.name} {' '.join(f'{k}={v!r}' for k, v in el.attrs.items() if k.startswith(('id', 'hx-')))}>"


def _resolves(soup, el, selector: str) -> bool:
    selector = selector.strip()
    if selector in ("this", "body", "document", "window"):
        return True
    for prefix in ("closest ", "find ", "next ", "previous "):
        if selector.startswith(prefix):
            sel = selector[len(prefix):].strip()
            if prefix == "closest ":
                node = el
                while node is not None and getattr(node, "name", None):
                    if sv.match(sel, node):
                        return True
                    node = node.parent
                return False
            if prefix == "find ":
                return el.select_one(sel) is not None
            return soup.select_one(sel) is not None  # next/previous: somewhere in the document
    return soup.select_one(selector) is not None


def htmx_problems(html: str, where: str, page_soup=None) -> tuple[list[str], list[tuple[str, str]]]:
    """(problems, [(fragment url, the element's description)]) for one page or fragment."""
    soup = BeautifulSoup(html, "html.parser")
    context = page_soup or soup
    problems, polled = [], []
    if page_soup is None and soup.find("html"):
        meta = soup.find("meta", attrs={"name": "htmx-config"})
        if soup.select(", ".join(f"[{v}]" for v in VERBS)):
            config = json.loads(meta["content"]) if meta else {}
            if not config.get("disableInheritance"):
                problems.append(f"{where}: htmx inheritance is on (htmx-config lacks disableInheritance)")
    for el in soup.select(", ".join(f"[{v}]" for v in VERBS)):
        for attr in ("hx-target", "hx-include"):
            sel = el.get(attr)
            if sel is None:
                continue
            # In a fragment, the element is looked up in the fragment itself (closest/find) and
            # plain selectors in the page it lands in, or the fragment (it may contain the target).
            if not (_resolves(context, el, sel) or _resolves(soup, el, sel)):
                problems.append(f"{where}: {attr}={sel!r} matches nothing, on {_describe(el)}")
        if el.get("hx-get") and "every" in (el.get("hx-trigger") or ""):
            polled.append((el["hx-get"], _describe(el)))
    return problems, polled


def _walk(client: Client, start: str) -> list[str]:
    problems, seen = [], set()
    queue = deque([start])
    pages = 0
    while queue and pages < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/html"):
            continue
        pages += 1
        html = response.content.decode()
        soup = BeautifulSoup(html, "html.parser")
        found, polled = htmx_problems(html, url)
        problems += found
        for fragment_url, who in polled:
            frag = client.get(fragment_url, HTTP_HX_REQUEST="true")
            if frag.status_code == 200:
                problems += htmx_problems(frag.content.decode(), f"{url} → {fragment_url}", page_soup=soup)[0]
        for a in soup.find_all("a", href=True):
            href = urldefrag(a["href"])[0]
            parsed = urlparse(href)
            if parsed.scheme or parsed.netloc or not href.startswith("/courses/"):
                continue
            if any(part in href for part in ("/download", "/export", "/file", "/starter", "/artifact", ".md", ".csv")):
                continue
            queue.append(href)
    assert pages > 5, f"the walk from {start} reached only {pages} pages"
    return problems


@pytest.fixture
def demo_course(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("load_demo", stdout=io.StringIO())
    from courseplatform.courses.models import Course

    return Course.objects.get(slug=demo_data.COURSE["slug"])


@pytest.mark.parametrize("username", [demo_data.STUDENTS[0][0], demo_data.TA[0], demo_data.INSTRUCTOR[0]])
def test_every_htmx_target_on_the_site_exists(demo_course, username):
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    problems = _walk(client, f"/courses/{demo_course.slug}/")
    assert not problems, "\n".join(problems)


def test_the_checker_finds_a_missing_or_inherited_target():
    """The checker itself: a target that is not in the page, and a page with inheritance on."""
    page = ('<html><head><meta name="htmx-config" content=\'{"disableInheritance": true}\'></head><body>'
            '<div hx-get="/x" hx-trigger="every 1s" hx-target="#gone"></div>'
            '<button hx-post="/y" hx-target="closest form"></button><span id="here"></span></body></html>')
    problems, polled = htmx_problems(page, "page")
    assert len(problems) == 2 and "#gone" in problems[0] and "closest form" in problems[1]
    assert polled == [("/x", polled[0][1])]
    inherited = page.replace(', "disableInheritance": true', "").replace('"disableInheritance": true', "")
    assert any("inheritance is on" in p for p in htmx_problems(inherited, "page")[0])
    # A fragment's target is looked up in the page it is swapped into.
    assert not htmx_problems('<div hx-get="/z" hx-target="#here"></div>', "frag",
                             page_soup=BeautifulSoup(page, "html.parser"))[0]
