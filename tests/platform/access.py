"""Who may call each root field: the one table the authorization matrix and the fuzzer read.

A new Query or Mutation field fails `test_authorization.test_every_root_field_is_declared`
until it has a line here.
"""

from __future__ import annotations

import enum


class Access(enum.Enum):
    ANYONE = "anyone, anonymous callers included"
    SIGNED_IN = "any authenticated caller: a user, an admin or a service"
    USER = "a signed-in person (role USER); not a service"
    ADMIN = "role ADMIN"
    SERVICE = "role SERVICE (the order and payment systems)"


ACCESS: dict[str, Access] = {
    # ---- identity
    "Query.node": Access.ANYONE,  # answers null to those who may not see the object
    "Query.viewer": Access.USER,
    "Query.launch": Access.ANYONE,  # each summary is null unless the caller has one
    "Query.users": Access.ADMIN,
    "Query.groups": Access.ADMIN,
    "Mutation.register": Access.ANYONE,
    "Mutation.login": Access.ANYONE,
    "Mutation.tokenRefresh": Access.ANYONE,  # the refresh token is the credential
    "Mutation.logout": Access.USER,
    "Mutation.accountDelete": Access.USER,
    "Mutation.userBlock": Access.ADMIN,
    "Mutation.userUnblock": Access.ADMIN,
    "Mutation.groupCreate": Access.ADMIN,
    "Mutation.groupUpdate": Access.ADMIN,
    "Mutation.groupDelete": Access.ADMIN,
    "Mutation.groupMembersAdd": Access.ADMIN,
    "Mutation.groupMembersRemove": Access.ADMIN,
    # ---- orders
    "Mutation.orderRecord": Access.SERVICE,
    # ---- goals
    "Query.goalOrder": Access.ADMIN,
    "Query.userGoals": Access.ADMIN,
    "Query.goalTemplates": Access.ADMIN,
    "Query.goalTemplate": Access.ADMIN,
    "Mutation.goalNotificationsMarkSeen": Access.USER,
    "Mutation.achievementsMarkSeen": Access.USER,
    "Mutation.goalAssign": Access.ADMIN,
    "Mutation.goalAssignmentUpload": Access.ADMIN,
    "Mutation.goalTemplateCreate": Access.ADMIN,
    "Mutation.goalTemplateUpdate": Access.ADMIN,
    "Mutation.goalTemplateArchive": Access.ADMIN,
    "Mutation.goalTemplateUnarchive": Access.ADMIN,
    # ---- promocodes
    "Query.plans": Access.ANYONE,
    "Query.promocodes": Access.ADMIN,
    "Query.promocode": Access.ADMIN,
    "Query.promocodeAttempts": Access.ADMIN,
    "Mutation.promocodeQuote": Access.USER,
    "Mutation.purchaseCreate": Access.USER,
    "Mutation.purchaseConfirm": Access.SERVICE,
    "Mutation.purchaseFail": Access.SERVICE,
    "Mutation.planCreate": Access.ADMIN,
    "Mutation.promocodeCreate": Access.ADMIN,
    "Mutation.promocodeUpdate": Access.ADMIN,
    "Mutation.promocodeDeactivate": Access.ADMIN,
    "Mutation.promocodeGenerate": Access.ADMIN,
    "Mutation.promocodeGrant": Access.ADMIN,
    "Mutation.promocodeRevokeGrant": Access.ADMIN,
    "Mutation.promocodeApply": Access.ADMIN,
    # ---- operations
    "Query.jobFailures": Access.ADMIN,
    "Query.jobPing": Access.ADMIN,
    "Query.auditLog": Access.ADMIN,
    "Mutation.jobRetry": Access.ADMIN,
    "Mutation.jobPing": Access.ADMIN,
}
