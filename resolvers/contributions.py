"""What a domain adds to the GraphQL schema, declared once in `resolvers/<domain>/__init__.py`.

    contribution = Contribution(
        queries=(GoalQuery,),
        mutations=(GoalMutation,),
        subscriptions=(GoalEventSubscription,),
        viewer=(GoalViewer,),
        launch=(GoalLaunch,),
    )

`schema/schema.py` merges the classes of every domain in `app.domains.DOMAINS` into `Query`,
`Mutation`, `Subscription`, `Viewer` (the signed-in user's data: `viewer { … }`) and `Launch`
(the app-start summary: `launch { … }`). Viewer and Launch classes hold fields only (resolvers
with no constructor arguments); a Viewer field reads the caller from `info.context`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Contribution:
    queries: tuple[type, ...] = ()
    mutations: tuple[type, ...] = ()
    subscriptions: tuple[type, ...] = ()
    viewer: tuple[type, ...] = ()
    launch: tuple[type, ...] = ()
