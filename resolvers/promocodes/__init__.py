"""Promocodes for subscription plans: plans, quotes, purchases, the payment result, and the
admin's codes, grants and generation."""

from resolvers.contributions import Contribution
from resolvers.promocodes.admin import PromocodeAdminMutation
from resolvers.promocodes.admin_queries import PromocodeAdminQuery
from resolvers.promocodes.queries import PromocodeMutation, PromocodeQuery
from resolvers.promocodes.viewer import PromocodeViewer

contribution = Contribution(
    queries=(PromocodeQuery, PromocodeAdminQuery),
    mutations=(PromocodeMutation, PromocodeAdminMutation),
    viewer=(PromocodeViewer,),
)
