"""Checks of each questionnaire: the audience and the fields it asks."""

from __future__ import annotations

import difflib
import typing

from campaignctl.spec.checks.base import CheckerBase
from campaignctl.spec.loaded import (
    LoadedDocument,
)
from campaignctl.spec.models import (
    Questionnaire,
)


class QuestionnaireChecks(CheckerBase):
    """Checks of each questionnaire: the audience and the fields it asks."""

    def _check_questionnaire(self, doc: LoadedDocument) -> None:
        questionnaire = typing.cast(Questionnaire, doc.model)
        if questionnaire.audience is None:
            return
        audience = self.ws.audiences.get(questionnaire.audience)
        if audience is None:
            self._unknown(doc, ("audience",), "audience", questionnaire.audience, self.ws.audiences)
            return
        columns = self.ws.record_columns(audience)
        if columns is None:
            return  # no header to check the field ids against
        for i, field_ in enumerate(questionnaire.fields or []):
            if field_.id not in columns and field_.type is None:
                close = difflib.get_close_matches(field_.id, list(columns), n=1)
                self._report(
                    doc.file,
                    doc.mark("fields", i, "id"),
                    "unknown-reference",
                    f"field {field_.id!r} is not a column of audience {audience.name!r}",
                    f"did you mean {close[0]!r}?"
                    if close
                    else "give the field a `type:` to ask a question that is not a column",
                )
