"""Identity and access: sign-in, the signed-in user, admin management of users and groups."""

from resolvers.contributions import Contribution
from resolvers.identity.admin import IdentityAdminMutation
from resolvers.identity.mutations import UserMutation
from resolvers.identity.queries import IdentityAdminQuery
from resolvers.identity.viewer import IdentityViewer

contribution = Contribution(
    queries=(IdentityAdminQuery,),
    mutations=(UserMutation, IdentityAdminMutation),
    viewer=(IdentityViewer,),
)
