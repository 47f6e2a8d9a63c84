"""Operator review services: accounts, sessions, verdicts, statistics, threat image projection, DICOS export.

No HTTP here (that is ``smartscreen.api``) and no line runtime: the service reads the journal and
image store and appends ``OperatorVerdict`` events.
"""

from smartscreen.review.accounts import AccountService, seed_demo_accounts
from smartscreen.review.models import Account, Role
from smartscreen.review.service import ReviewService

__all__ = ["Account", "AccountService", "ReviewService", "Role", "seed_demo_accounts"]
