"""The checks that need more than one document: references, files, schedules, channels.

One mixin per kind of definition (config, audiences, segments, questionnaires, campaigns,
the files they name, schedules), sharing `CheckerBase`'s reporting; `WorkspaceChecker`
runs them all in one pass, so every problem of every file is reported at once."""

from __future__ import annotations

from campaignctl.spec.checks.audiences import AudienceChecks
from campaignctl.spec.checks.campaigns import CampaignChecks
from campaignctl.spec.checks.config import ConfigChecks
from campaignctl.spec.checks.files import FileChecks
from campaignctl.spec.checks.questionnaires import QuestionnaireChecks
from campaignctl.spec.checks.schedules import ScheduleChecks
from campaignctl.spec.checks.segments import SegmentChecks
from campaignctl.spec.templates import cached_workspace_templates, check_workspace_templates


class WorkspaceChecker(
    ConfigChecks,
    AudienceChecks,
    SegmentChecks,
    QuestionnaireChecks,
    CampaignChecks,
    FileChecks,
    ScheduleChecks,
):
    """Checks that need more than one document: references, files, schedules, channels."""

    def run(self) -> None:
        if self.config is not None:
            self._check_config()
        for doc in self.ws.documents["Audience"].values():
            self._check_audience(doc)
        for doc in self.ws.documents["Segment"].values():
            self._check_segment(doc)
        self._check_segment_cycles()
        for doc in self.ws.documents["Questionnaire"].values():
            self._check_questionnaire(doc)
        for doc in self.ws.documents["List"].values():
            self._check_list(doc)
        for doc in self.ws.documents["Campaign"].values():
            self._check_campaign(doc)
        self._check_templates()

    def _check_templates(self) -> None:
        """Template syntax and variables (spec.templates): parsed, never rendered."""
        check = cached_workspace_templates if self.template_cache else check_workspace_templates
        self.ws.diagnostics.extend(check(self.ws))

    # ------------------------------------------------------------------ reporting
