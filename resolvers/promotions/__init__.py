"""Promotion rewards: the viewer's promotion and badge, start / reward / accept, and the
admin's promotions, geo config, pre-offer imports, histories and funnels."""

from resolvers.contributions import Contribution
from resolvers.promotions.admin import PromotionAdminMutation, PromotionAdminQuery
from resolvers.promotions.queries import PromotionMutation
from resolvers.promotions.viewer import PromotionLaunch, PromotionViewer

contribution = Contribution(
    queries=(PromotionAdminQuery,),
    mutations=(PromotionMutation, PromotionAdminMutation),
    viewer=(PromotionViewer,),
    launch=(PromotionLaunch,),
)
