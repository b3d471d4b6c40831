from django.contrib import admin

from .models import FingerprintCache, PairReview, PublicSource, SimilarityCheck, SimilarityPair, SimilaritySettings


@admin.register(SimilarityCheck)
class SimilarityCheckAdmin(admin.ModelAdmin):
    list_display = ("id", "assignment", "state", "submissions", "reused", "created_at", "finished_at")
    list_filter = ("state",)


admin.site.register([SimilaritySettings, PublicSource, PairReview])


@admin.register(SimilarityPair)
class SimilarityPairAdmin(admin.ModelAdmin):
    list_display = ("id", "check_run", "rank", "score", "sub_a", "sub_b")
    raw_id_fields = ("check_run", "sub_a", "sub_b")


@admin.register(FingerprintCache)
class FingerprintCacheAdmin(admin.ModelAdmin):
    list_display = ("sha256", "key", "created_at")
