"""Who may call each root field (`ACCESS`: the one table the authorization matrix and the
fuzzer read), and what a user may do with another user's objects (`OWNED`: the table the
object-level matrix reads).

A new Query or Mutation field fails `test_authorization.test_every_root_field_is_declared`
until it has a line in `ACCESS`; a new field a user may call fails
`test_object_authorization.test_every_user_field_is_declared` until it has one in `OWNED`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Access(enum.Enum):
    ANYONE = "anyone, anonymous callers included"
    SIGNED_IN = "any authenticated caller: a user, an admin or a service"
    USER = "a signed-in person (role USER); not a service"
    ADMIN = "role ADMIN"
    SERVICE = "role SERVICE (the order and payment systems)"
    ADMIN_OR_SERVICE = "role ADMIN or SERVICE (an import scoring pushes, or an admin runs)"


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
    "Mutation.orderRecordBatch": Access.SERVICE,
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
    # ---- promotions
    "Query.promotions": Access.ADMIN,
    "Query.promotionRegions": Access.ADMIN,
    "Query.promotionFunnel": Access.ADMIN,
    "Query.userPromotions": Access.ADMIN,
    "Mutation.promotionStart": Access.USER,
    "Mutation.promotionReward": Access.USER,
    "Mutation.promotionRewardAccept": Access.USER,
    "Mutation.promotionCreate": Access.ADMIN,
    "Mutation.promotionUpdate": Access.ADMIN,
    "Mutation.promotionRegionSet": Access.ADMIN,
    "Mutation.promotionPreOffersImport": Access.ADMIN_OR_SERVICE,
    # ---- notifier
    "Mutation.corpClientUpsert": Access.ADMIN_OR_SERVICE,
    "Mutation.corpEventPublish": Access.SERVICE,
    "Query.corpEmails": Access.ADMIN,
    "Query.corpClient": Access.ADMIN,
    "Query.notifierRules": Access.ADMIN,
    "Query.notifierNotices": Access.ADMIN,
    "Query.notifierPreview": Access.ADMIN,
    "Mutation.corpEmailSend": Access.ADMIN,
    "Mutation.corpEmailResend": Access.ADMIN,
    "Mutation.corpEmailCancel": Access.ADMIN,
    "Mutation.notifierRuleSave": Access.ADMIN,
    "Mutation.notifierTemplateSave": Access.ADMIN,
    "Mutation.corpPreferenceSet": Access.ADMIN,
    "Mutation.notifierDispatch": Access.ADMIN,
    # ---- operations
    "Query.jobFailures": Access.ADMIN,
    "Query.jobPing": Access.ADMIN,
    "Query.auditLog": Access.ADMIN,
    "Mutation.jobRetry": Access.ADMIN,
    "Mutation.jobPing": Access.ADMIN,
    # ---- family
    "Query.familyMigrations": Access.ADMIN,
    "Query.familyMigrationCounts": Access.ADMIN,
    "Mutation.familyCreate": Access.USER,
    "Mutation.familyDelete": Access.USER,
    "Mutation.familyMemberAdd": Access.USER,
    "Mutation.familyMemberRemove": Access.USER,
    "Mutation.familyLeave": Access.USER,
    "Mutation.familyInvitationAccept": Access.USER,
    "Mutation.familyInvitationDecline": Access.USER,
    "Mutation.familyMemberLimitSet": Access.USER,
    "Mutation.familyPaymentMethodSet": Access.USER,
    "Mutation.familyNotificationsMarkSeen": Access.USER,
    "Mutation.familyRideCheck": Access.SERVICE,
    "Mutation.familyRideCharge": Access.SERVICE,
    "Mutation.familyRideRelease": Access.SERVICE,
    "Mutation.paymentCardUpsert": Access.SERVICE,  # the card store
    "Mutation.paymentCardRemove": Access.SERVICE,
    "Mutation.familyPlusMultiSet": Access.ADMIN_OR_SERVICE,  # the subscription system, or an admin
    "Mutation.familyMigrationBulk": Access.ADMIN,
    "Mutation.familyMigrationStart": Access.ADMIN,
}


# ---- object level: what a user may do with another user's objects -------------------------


class Refers(enum.Enum):
    """How a root field a user may call names objects that belong to one user."""

    NOTHING = "names no user's object (public data, or nothing to name)"
    CALLER = "no id: reads or changes only the caller's own objects"
    IDS = "takes global ids of objects users own"
    SECRET = "takes a value that picks out one user's object: an email, a password, a granted code"
    CREDENTIAL = "the argument is the credential: whoever holds it acts as its owner"


class Outcome(enum.Enum):
    """What another user gets for the victim's real object (never the victim's data, never a
    changed row). The payload-error outcomes are the code the payload's `errors` carry."""

    NULL = "null, as for an id that names nothing"
    IGNORED = "accepted and ignored like an unknown id: no errors, nothing marked or revoked"
    OWN_ONLY = "the caller's own objects only: none of the victim's"
    NOT_FOUND = "the payload error NOT_FOUND, as for a code that doesn't exist"
    INVALID_CREDENTIALS = "the payload error INVALID_CREDENTIALS, as for any wrong password"
    EMAIL_TAKEN = "the payload error EMAIL_TAKEN: registration does tell that an email is used"
    NO_PRE_OFFER = "the payload error NO_PRE_OFFER: the caller has no offer for that promotion"
    NOT_STARTED = "the payload error NOT_STARTED: the caller has no run of that promotion"
    MEMBER_NOT_FOUND = (
        "the payload error MEMBER_NOT_FOUND: the member id is not of the caller's own family"
    )
    CARD_NOT_FOUND = "the payload error CARD_NOT_FOUND: the card is not one of the caller's"
    ALREADY_IN_FAMILY = (
        "the payload error ALREADY_IN_FAMILY: adding a phone tells that its user is in a "
        "family (one family each), as registration tells that an email is used"
    )


@dataclass(frozen=True)
class Owned:
    refers: Refers
    # The victim's objects another user tries the field with, and what they get; each has a
    # case in tests/platform/test_object_authorization.py (CASES).
    tries: Mapping[str, Outcome] = field(default_factory=dict)
    # Tables the attacker's own new rows may appear in (their rejected attempts are logged).
    writes: frozenset[str] = frozenset()
    why: str = ""


_REJECTED_ATTEMPTS = frozenset({"promocode_attempts"})

OWNED: dict[str, Owned] = {
    # ---- identity
    "Query.node": Owned(
        Refers.IDS,
        {
            "User": Outcome.NULL,
            "UserGoal": Outcome.NULL,
            "GoalNotification": Outcome.NULL,
            "GoalProgressLogEntry": Outcome.NULL,
            "WalletEntryNode": Outcome.NULL,
            "Purchase": Outcome.NULL,
            "PromocodeGrant": Outcome.NULL,
            "PromocodeAttempt": Outcome.NULL,
            "AuditLogEntry": Outcome.NULL,
            "FamilyAccount": Outcome.NULL,
        },
    ),
    "Query.viewer": Owned(
        Refers.CALLER,
        {
            "User": Outcome.OWN_ONLY,
            "Group": Outcome.OWN_ONLY,
            "UserGoal": Outcome.OWN_ONLY,
            "GoalNotification": Outcome.OWN_ONLY,
            "Achievement": Outcome.OWN_ONLY,
            "GoalProgressLogEntry": Outcome.OWN_ONLY,
            "WalletEntryNode": Outcome.OWN_ONLY,
            "Purchase": Outcome.OWN_ONLY,
            "personal grant": Outcome.OWN_ONLY,
            "group grant": Outcome.OWN_ONLY,
            "PromotionRun": Outcome.OWN_ONLY,
            "FamilyAccount": Outcome.OWN_ONLY,
            "FamilyMember": Outcome.OWN_ONLY,
            "PaymentCard": Outcome.OWN_ONLY,
            "FamilyNotification": Outcome.OWN_ONLY,
        },
    ),
    "Query.launch": Owned(
        Refers.CALLER,
        {
            "Achievement": Outcome.OWN_ONLY,
            "PromotionRun": Outcome.OWN_ONLY,
            "FamilyAccount": Outcome.OWN_ONLY,
        },
    ),
    "Mutation.register": Owned(Refers.SECRET, {"email": Outcome.EMAIL_TAKEN}),
    "Mutation.login": Owned(
        Refers.CREDENTIAL,
        {"email": Outcome.INVALID_CREDENTIALS},
        why="the login and password are the credential; a wrong password gets nothing",
    ),
    "Mutation.tokenRefresh": Owned(
        Refers.CREDENTIAL,
        why="the refresh token is a bearer credential: whoever presents it is its session "
        "(rotation and reuse detection: tests/identity/test_auth.py)",
    ),
    "Mutation.logout": Owned(Refers.SECRET, {"refresh token": Outcome.IGNORED}),
    "Mutation.accountDelete": Owned(Refers.SECRET, {"password": Outcome.INVALID_CREDENTIALS}),
    # ---- goals
    "Mutation.goalNotificationsMarkSeen": Owned(Refers.IDS, {"GoalNotification": Outcome.IGNORED}),
    "Mutation.achievementsMarkSeen": Owned(Refers.IDS, {"UserGoal": Outcome.IGNORED}),
    "Subscription.goalProgress": Owned(
        Refers.CALLER,
        why="the caller's own channel, no argument (tests/goals/test_subscription.py: "
        "test_another_users_events_are_not_delivered)",
    ),
    # ---- promocodes
    "Query.plans": Owned(Refers.NOTHING, why="plans are public"),
    "Mutation.promocodeQuote": Owned(
        Refers.SECRET,
        {"personal grant": Outcome.NOT_FOUND, "group grant": Outcome.NOT_FOUND},
        writes=_REJECTED_ATTEMPTS,
    ),
    "Mutation.purchaseCreate": Owned(
        Refers.SECRET,
        {
            "personal grant": Outcome.NOT_FOUND,
            "group grant": Outcome.NOT_FOUND,
            "idempotency key": Outcome.NOT_FOUND,
        },
        writes=_REJECTED_ATTEMPTS,
    ),
    # ---- promotions: the id names a promotion (shared); the caller's own run is acted on
    "Mutation.promotionStart": Owned(Refers.IDS, {"PromotionRun": Outcome.NO_PRE_OFFER}),
    "Mutation.promotionReward": Owned(Refers.IDS, {"PromotionRun": Outcome.NOT_STARTED}),
    "Mutation.promotionRewardAccept": Owned(Refers.IDS, {"PromotionRun": Outcome.NOT_STARTED}),
    # ---- family: a family the caller isn't in is NOT_FOUND; in the caller's own family
    # ("… in own family": the attacker owns one), the victim's member and card are not found
    "Mutation.familyCreate": Owned(
        Refers.CALLER, why="creates the caller's own family; names nothing of anyone's"
    ),
    "Mutation.familyDelete": Owned(Refers.IDS, {"FamilyAccount": Outcome.NOT_FOUND}),
    "Mutation.familyMemberAdd": Owned(
        Refers.IDS,
        {
            "FamilyAccount": Outcome.NOT_FOUND,  # the attacker adds themselves to it
            "FamilyMember in own family": Outcome.ALREADY_IN_FAMILY,  # the member's phone
        },
    ),
    "Mutation.familyMemberRemove": Owned(
        Refers.IDS,
        {
            "FamilyMember in own family": Outcome.MEMBER_NOT_FOUND,
            "FamilyMember": Outcome.NOT_FOUND,  # last: its control removes the member
        },
    ),
    "Mutation.familyLeave": Owned(Refers.IDS, {"FamilyAccount": Outcome.NOT_FOUND}),
    # an answer to an invitation the caller doesn't have: NOT_FOUND, as for any family
    "Mutation.familyInvitationAccept": Owned(Refers.IDS, {"FamilyAccount": Outcome.NOT_FOUND}),
    "Mutation.familyInvitationDecline": Owned(Refers.IDS, {"FamilyAccount": Outcome.NOT_FOUND}),
    "Mutation.familyMemberLimitSet": Owned(
        Refers.IDS,
        {"FamilyMember": Outcome.NOT_FOUND, "FamilyMember in own family": Outcome.MEMBER_NOT_FOUND},
    ),
    "Mutation.familyPaymentMethodSet": Owned(
        Refers.IDS,
        {"FamilyAccount": Outcome.NOT_FOUND, "PaymentCard in own family": Outcome.CARD_NOT_FOUND},
    ),
    "Mutation.familyNotificationsMarkSeen": Owned(
        Refers.IDS, {"FamilyNotification": Outcome.IGNORED}
    ),
}
"""How each root field a user may call (ANYONE, SIGNED_IN, USER, and every Subscription
field) refers to objects one user owns, and what another user gets for the victim's real
ones. A new such field fails `test_object_authorization.test_every_user_field_is_declared`
until it has a line here; a field with an ID-typed argument or input field must name the
objects it is tried with. ADMIN and SERVICE fields need no line: a user is refused them
before any id is read (`test_a_user_is_refused_admin_and_service_fields_on_real_ids`)."""
