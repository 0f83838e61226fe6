"""Personal goals: templates with conditions and a bonus, user goals, order matching.

The pure rules touch no database: `codes` (the error codes), `conditions` (what a goal asks
for), `time_window`, `matching` (does an order count, and if not, why), `bonuses` (what a goal
gives), `texts`, `assignment_csv`, `fields` (the JSON readers they share).

The steps that do: `templates` (admin), `assignment` (one user or a CSV upload), `processing`
(`goals.process_orders`, a user's pending orders in batches; `goals.process_order` for
messages queued before that), `granting` (`goals.finish`), `expiry` (`goals.expire`,
`goals.remind`), `reading` (the client and admin reads), `privacy` (account deletion). They
share `locking` (the user lock and why), `lifecycle` (activation, MISSED), `events` (push
events), `notifications` (in-app notifications and their acknowledgement) and `metrics`.

Goals consume the order stream (`app.services.orders`) and pay into the wallet through its
ledger and cashback grants (`app.services.wallet`); neither of those imports goals.
"""
