"""``kpi`` listens to ``surveys``: a submission asks for a (debounced) scoring."""

from __future__ import annotations

import logging
from typing import Any

from .models import EvaluationRun
from .services import run_request_debounced

logger = logging.getLogger(__name__)


def on_response_submitted(*, study_id: int, **kwargs: Any) -> None:
    # Runs after the participant's transaction committed: whatever happens here must not
    # turn their accepted submission into an error page.
    try:
        run_request_debounced(study_id=study_id, trigger=EvaluationRun.Trigger.SUBMISSION)
    except Exception:
        logger.exception("could not request scoring for study %s", study_id)
