"""The order stream: the ordering service reports orders; goals (and later promotions and
cashback) consume them."""

from resolvers.contributions import Contribution
from resolvers.orders.mutations import OrderMutation

contribution = Contribution(mutations=(OrderMutation,))
