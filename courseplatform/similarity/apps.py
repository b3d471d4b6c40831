from django.apps import AppConfig


class SimilarityConfig(AppConfig):
    name = "courseplatform.similarity"
    label = "similarity"
    verbose_name = "Similarity (copy detection)"
    default_auto_field = "django.db.models.BigAutoField"
