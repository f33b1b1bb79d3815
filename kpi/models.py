"""The KPI app's models, for Django (which looks for them here), its migrations and every
import: ``from kpi.models import KPI``. Each is written beside its subdomain's code:
definitions (segments, KPIs), scoring (runs, results), evaluations and registration
(of the specification, and its deviations).
"""

from .definitions.models import KPI, Clause, Segment
from .evaluations.models import Evaluation, evaluation_upload_to
from .registration.models import Deviation, DeviationWindow, Registration
from .scoring.models import RESULT_FIELDS, EvaluationRun, KPIResult, StudyResults

__all__ = [
    "KPI",
    "RESULT_FIELDS",
    "Clause",
    "Deviation",
    "DeviationWindow",
    "Evaluation",
    "EvaluationRun",
    "KPIResult",
    "Registration",
    "Segment",
    "StudyResults",
    "evaluation_upload_to",
]
