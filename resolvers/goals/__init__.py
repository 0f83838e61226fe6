"""Personal goals: the viewer's goals, acknowledgements, live progress, and the admin's
templates and assignments."""

from resolvers.contributions import Contribution
from resolvers.goals.admin import GoalAdminMutation, GoalAdminQuery
from resolvers.goals.assign import GoalAssignMutation, GoalAssignQuery
from resolvers.goals.queries import GoalMutation
from resolvers.goals.subscriptions import GoalEventSubscription
from resolvers.goals.viewer import GoalLaunch, GoalViewer

contribution = Contribution(
    queries=(GoalAssignQuery, GoalAdminQuery),
    mutations=(GoalMutation, GoalAssignMutation, GoalAdminMutation),
    subscriptions=(GoalEventSubscription,),
    viewer=(GoalViewer,),
    launch=(GoalLaunch,),
)
