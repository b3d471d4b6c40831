"""Django's JSON serializer without its rounding, for backups (settings.SERIALIZATION_MODULES:
``dumpdata --format exactjson``).

DjangoJSONEncoder writes a datetime or a time with milliseconds only, so a dump loaded back has
lost the microseconds of every timestamp (an ordering by time can change, and the restored site is
not the one backed up). This encoder writes them whole; the output is ordinary Django JSON, which
``loaddata`` reads with its own deserializer (DateTimeField.to_python keeps the microseconds)."""
from __future__ import annotations

import datetime

from django.core.serializers.json import Deserializer, DjangoJSONEncoder
from django.core.serializers.json import Serializer as JSONSerializer

__all__ = ["Serializer", "Deserializer"]


class ExactEncoder(DjangoJSONEncoder):
    def default(self, o):
        if isinstance(o, datetime.datetime):
            text = o.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        if isinstance(o, datetime.time):
            return o.isoformat()
        return super().default(o)


class Serializer(JSONSerializer):
    def _init_options(self):
        super()._init_options()
        self.json_kwargs["cls"] = ExactEncoder
