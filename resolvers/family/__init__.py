"""Family accounts: the caller's family, members, limits and cards; the service's ride calls
and card store; the admin's migration to passport."""

from resolvers.contributions import Contribution
from resolvers.family.admin import FamilyAdminMutation, FamilyAdminQuery
from resolvers.family.mutations import FamilyMutation
from resolvers.family.service import FamilyServiceMutation
from resolvers.family.viewer import FamilyLaunch, FamilyViewer

contribution = Contribution(
    queries=(FamilyAdminQuery,),
    mutations=(FamilyMutation, FamilyServiceMutation, FamilyAdminMutation),
    viewer=(FamilyViewer,),
    launch=(FamilyLaunch,),
)
