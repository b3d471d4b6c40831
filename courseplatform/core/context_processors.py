def course_context(request):
    """Expose the course and membership a course view resolved, for the navigation."""
    return {
        "course": getattr(request, "course", None),
        "membership": getattr(request, "membership", None),
    }
