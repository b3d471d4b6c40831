"""Browser tests: Playwright for Python driving Debian's chromium against pytest-django's live
server. The fixtures (browser, page, login) live in tests/conftest.py, shared with every folder."""
