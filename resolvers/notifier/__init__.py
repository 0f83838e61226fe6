"""The corporate notifier: clients and events from the corporate systems (SERVICE), and the
operators' history, rules, templates, previews and sends (ADMIN)."""

from resolvers.contributions import Contribution
from resolvers.notifier.admin import NotifierAdminMutation, NotifierAdminQuery
from resolvers.notifier.service import NotifierServiceMutation

contribution = Contribution(
    queries=(NotifierAdminQuery,),
    mutations=(NotifierServiceMutation, NotifierAdminMutation),
)
