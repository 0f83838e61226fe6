"""The wallet: credited by goal bonuses and cashback; the viewer reads it."""

from resolvers.contributions import Contribution
from resolvers.wallet.viewer import WalletViewer

contribution = Contribution(viewer=(WalletViewer,))
