"""Operations: the job system's admin surface (dead letters, their replay, the ping canary)."""

from resolvers.contributions import Contribution
from resolvers.operations.admin import JobMutation, JobQuery

contribution = Contribution(queries=(JobQuery,), mutations=(JobMutation,))
