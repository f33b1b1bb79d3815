"""The KPI app's admin, which Django looks for here: each subdomain registers its own."""

from .definitions import admin as definitions_admin  # noqa: F401
from .evaluations import admin as evaluations_admin  # noqa: F401
from .registration import admin as registration_admin  # noqa: F401
from .scoring import admin as scoring_admin  # noqa: F401
