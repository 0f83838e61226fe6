"""The corporate notifier: clients and events from the corporate systems (SERVICE), and the
admin's view of the email queue."""

from resolvers.contributions import Contribution
from resolvers.notifier.service import NotifierServiceMutation

contribution = Contribution(mutations=(NotifierServiceMutation,))
