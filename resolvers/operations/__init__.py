"""Operations: the job system's admin surface (dead letters, their replay, the ping canary)
and the audit log."""

from resolvers.contributions import Contribution
from resolvers.operations.admin import JobMutation, JobQuery
from resolvers.operations.audit import AuditQuery

contribution = Contribution(queries=(JobQuery, AuditQuery), mutations=(JobMutation,))
