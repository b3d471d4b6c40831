"""The site's shared infrastructure, no feature of its own: every app may import any of it, and it
imports no app (checked by the import contracts in pyproject.toml).

- ``hooks``: the registry through which apps extend the course without importing each other
  (dashboard panels, gradebook items, demo and sync steps) and the types they return (``Panel``,
  ``GradeItem``);
- ``markdown`` (rendering and sanitising per context), ``csvexport`` (every CSV download),
  ``charts`` (the inline SVG histogram), ``templatetags`` (``cp_time``, a builtin of every template:
  times with their zone; ``cp_tags``: ``points``, ``get_item``);
- ``csp`` (the Content-Security-Policy middleware), ``timezones`` (one zone per course, activated per
  request), ``context_processors``, ``logutil`` (log format and filters), ``hashers`` and
  ``login_throttle`` (accounts).

It is an app (``CoreConfig``) because it owns start-up work: ``ready()`` discovers the hook modules
and creates the local folders the settings name, and its template tags are found as an app's.
Course roles and memberships are the courses app's (``courses.permissions``, ``courses.models``).
"""
